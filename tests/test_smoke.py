from tests.factories import created


async def test_a_created_case_can_be_read_back(services, gql) -> None:
    await services.pipeline.ingest([created("CASE-1")])

    result = await gql('{ case(id: "CASE-1") { id title status customer { id name } } }')

    assert result == {"data": {"case": {"id": "CASE-1", "title": "Mortgage for a flat", "status": "NEW",
                                        "customer": {"id": "CUST-1", "name": "Anna Kowalska"}}}}
