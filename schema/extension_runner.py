"""Strawberry's schema-extension hooks, run without building a context manager per hook and request.

Strawberry's runner, for every request and stage (operation, parse, validate, execute, each streamed result), looks
every hook up on its class, inspects what kind of function it is, wraps it in `contextlib.contextmanager` and enters
the wrappers through an exit stack: ~100 µs of a request's fixed cost with our eight extensions, more than
graphql-core's whole execution of a trivial query. `HookRunner` inspects each extension class once (the table is an
attribute of the class, so it lives exactly as long as the class) and drives the hooks' generators itself, with
contextlib's semantics: hooks are entered in the extensions' order and left in reverse; an exception raised inside
the stage, or by a hook on its way out, is thrown into each hook still open, which may let it pass, replace it or
swallow it. A generator that does not yield once is an error, as under contextlib. One difference, on purpose:
when a hook fails on its way in, the hooks already entered are closed at once (Strawberry leaves them to the
garbage collector, which closes them the same way, later).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

GENERATOR, ASYNC_GENERATOR, COROUTINE, FUNCTION = "generator", "async generator", "coroutine", "function"
HOOK_NAMES = ("on_operation", "on_parse", "on_validate", "on_execute", "on_stream_result")
_HOOKS_ATTRIBUTE = "_case_repository_hooks"
_NO_ARGUMENT = object()

Hook = tuple[str, Callable[..., Any]]


def hooks_of(extension_class: type[SchemaExtension]) -> dict[str, Hook]:
    """The hooks the class overrides, by name, each with its kind."""
    hooks: dict[str, Hook] | None = extension_class.__dict__.get(_HOOKS_ATTRIBUTE)
    if hooks is None:
        hooks = {}
        for name in HOOK_NAMES:
            hook = getattr(extension_class, name)
            if hook is getattr(SchemaExtension, name):
                continue
            if inspect.isgeneratorfunction(hook):
                hooks[name] = (GENERATOR, hook)
            elif inspect.isasyncgenfunction(hook):
                hooks[name] = (ASYNC_GENERATOR, hook)
            elif inspect.iscoroutinefunction(hook):
                hooks[name] = (COROUTINE, hook)
            elif callable(hook):
                hooks[name] = (FUNCTION, hook)
            else:
                raise ValueError(f"Hook {name} on {extension_class} must be callable, received {hook!r}")
        # Set on the class itself, so a subclass never reads its parent's table.
        setattr(extension_class, _HOOKS_ATTRIBUTE, hooks)
    return hooks


class HookStage:
    """One stage's hooks of one request, entered and left as one (async) context manager."""

    __slots__ = ("_calls", "_argument", "_open")

    def __init__(self, calls: list[tuple[str, Callable[..., Any], SchemaExtension]],
                 argument: Any = _NO_ARGUMENT) -> None:
        self._calls = calls
        self._argument = argument
        self._open: list[tuple[str, Any]] = []

    def _arguments(self, extension: SchemaExtension) -> tuple[Any, ...]:
        return (extension,) if self._argument is _NO_ARGUMENT else (extension, self._argument)

    async def __aenter__(self) -> None:
        try:
            for kind, hook, extension in self._calls:
                if kind is GENERATOR:
                    generator = hook(*self._arguments(extension))
                    try:
                        next(generator)
                    except StopIteration:
                        raise RuntimeError(f"{extension}: its hook did not yield") from None
                    self._open.append((kind, generator))
                elif kind is ASYNC_GENERATOR:
                    generator = hook(*self._arguments(extension))
                    try:
                        await generator.__anext__()
                    except StopAsyncIteration:
                        raise RuntimeError(f"{extension}: its hook did not yield") from None
                    self._open.append((kind, generator))
                elif kind is COROUTINE:
                    await hook(*self._arguments(extension))
                else:
                    hook(*self._arguments(extension))
        except BaseException:
            for kind, generator in reversed(self._open):
                if kind is ASYNC_GENERATOR:
                    await generator.aclose()
                else:
                    generator.close()
            self._open = []
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> bool:
        pending = exc
        for kind, generator in reversed(self._open):
            try:
                if kind is GENERATOR:
                    generator.send(None) if pending is None else generator.throw(pending)
                elif pending is None:
                    await generator.__anext__()
                else:
                    await generator.athrow(pending)
            except (StopIteration, StopAsyncIteration):
                pending = None  # the hook ended: it let nothing through, or swallowed what came
            except BaseException as raised:  # the same exception passed on, or a new one
                pending = raised
            else:
                pending = RuntimeError(f"{generator}: a hook's generator yielded more than once")
        self._open = []
        if pending is None:
            return exc is not None
        if pending is exc:
            return False
        raise pending

    def __enter__(self) -> None:
        for kind, _hook, extension in self._calls:
            if kind in (ASYNC_GENERATOR, COROUTINE):
                raise RuntimeError(f"SchemaExtension hook {extension} failed to complete synchronously.")
        _run_now(self.__aenter__())

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        return _run_now(self.__aexit__(exc_type, exc, traceback))


def _run_now(coroutine: Any) -> Any:
    """A stage's coroutine where every hook is synchronous, so it never suspends: run to its end at once."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a synchronous hook stage suspended")


class HookRunner(SchemaExtensionsRunner):
    """Strawberry's runner with the hooks looked up once per extension class (`hooks_of`)."""

    def __init__(self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None) -> None:
        super().__init__(execution_context, extensions)
        self._tables = [(hooks_of(type(extension)), extension) for extension in self.extensions]

    def _stage(self, name: str, argument: Any = _NO_ARGUMENT) -> HookStage:
        return HookStage([(*table[name], extension) for table, extension in self._tables if name in table], argument)

    def operation(self) -> HookStage:  # type: ignore[override]
        return self._stage("on_operation")

    def validation(self) -> HookStage:  # type: ignore[override]
        return self._stage("on_validate")

    def parsing(self) -> HookStage:  # type: ignore[override]
        return self._stage("on_parse")

    def executing(self) -> HookStage:  # type: ignore[override]
        return self._stage("on_execute")

    def on_stream_result(self, result: Any) -> HookStage:  # type: ignore[override]
        return self._stage("on_stream_result", result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self.extensions:
            if type(extension).get_results is not SchemaExtension.get_results:
                data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data
