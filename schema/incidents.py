"""Dashboard mutation on incidents: the verified retry (rules in consumers/incident_retry.py, resolvers/incidents.py)."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers import incidents as incident_rules
from schema.cases import Incident


@strawberry.type
class IncidentMutations:
    @strawberry.mutation(description="Ask the engine to retry a retryable open incident (`incident.retry_requested`); "
                                     "the incident is PENDING_RETRY until the engine resolves or raises it again. "
                                     "A retry while one is pending sends nothing and returns the incident.")
    async def retry_incident(self, info: Info, incident_id: strawberry.ID) -> Incident:
        incident, case_id = await incident_rules.retry_incident(info.context, incident_id)
        return Incident.from_doc(incident, case_id)
