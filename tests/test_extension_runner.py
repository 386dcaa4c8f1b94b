"""The hook runner (schema/extension_runner.py) runs schema-extension hooks as Strawberry's context managers do."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from schema.extension_runner import HookRunner


class Refused(Exception):
    pass


class Reworded(Exception):
    pass


def runner(*extensions: SchemaExtension) -> HookRunner:
    return HookRunner(ExecutionContext(query="{ a }", schema=None, allowed_operations=()),  # type: ignore[arg-type]
                      list(extensions))


def recording(name: str, log: list[str]) -> SchemaExtension:
    class Recording(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append(f"{name} in")
            try:
                yield
            except Exception as error:
                log.append(f"{name} saw {type(error).__name__}")
                raise
            log.append(f"{name} out")

    return Recording()


async def test_hooks_are_entered_in_order_and_left_in_reverse() -> None:
    log: list[str] = []

    class AsyncRecording(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            log.append("second in")
            yield
            log.append("second out")

    class Plain(SchemaExtension):
        def on_operation(self) -> None:
            log.append("third called")

    async with runner(recording("first", log), AsyncRecording(), Plain()).operation():
        log.append("body")
    assert log == ["first in", "second in", "third called", "body", "second out", "first out"]


async def test_an_exception_of_the_stage_reaches_every_open_hook_outward() -> None:
    log: list[str] = []
    with pytest.raises(Refused):
        async with runner(recording("outer", log), recording("inner", log)).operation():
            raise Refused()
    assert log == ["outer in", "inner in", "inner saw Refused", "outer saw Refused"]


async def test_a_hook_may_replace_the_exception_and_the_outer_hooks_see_the_new_one() -> None:
    log: list[str] = []

    class Rewording(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            try:
                yield
            except Refused as error:
                raise Reworded("said otherwise") from error

    with pytest.raises(Reworded, match="said otherwise"):
        async with runner(recording("outer", log), Rewording()).operation():
            raise Refused()
    assert log == ["outer in", "outer saw Reworded"]


async def test_a_hook_that_swallows_the_exception_ends_the_stage_quietly() -> None:
    log: list[str] = []

    class Swallowing(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            try:
                yield
            except Refused:
                log.append("swallowed")

    async with runner(Swallowing()).executing():
        raise Refused()
    assert log == ["swallowed"]


async def test_a_hook_that_fails_on_its_way_in_closes_the_hooks_already_open() -> None:
    log: list[str] = []

    class Closing(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            try:
                yield
            finally:
                log.append("closed")

    class Failing(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            raise Refused()
            yield

    with pytest.raises(Refused):
        async with runner(Closing(), Failing()).parsing():
            log.append("body")
    assert log == ["closed"]


async def test_a_generator_hook_that_never_yields_is_an_error() -> None:
    class NeverYields(SchemaExtension):
        def on_validate(self) -> Iterator[None]:
            return
            yield

    with pytest.raises(RuntimeError, match="did not yield"):
        async with runner(NeverYields()).validation():
            pass


async def test_a_stream_result_hook_gets_the_result() -> None:
    seen: list[object] = []

    class Seeing(SchemaExtension):
        def on_stream_result(self, result: object) -> Iterator[None]:
            seen.append(result)
            yield

    async with runner(Seeing()).on_stream_result("the result"):  # type: ignore[arg-type]
        pass
    assert seen == ["the result"]


def test_an_async_hook_in_a_synchronous_stage_is_refused() -> None:
    class AsyncHook(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            yield

    with pytest.raises(RuntimeError, match="failed to complete synchronously"):
        with runner(AsyncHook()).operation():
            pass


def test_a_synchronous_stage_runs_generator_hooks_the_same_way() -> None:
    log: list[str] = []
    with pytest.raises(Refused):
        with runner(recording("outer", log), recording("inner", log)).operation():
            log.append("body")
            raise Refused()
    assert log == ["outer in", "inner in", "body", "inner saw Refused", "outer saw Refused"]
