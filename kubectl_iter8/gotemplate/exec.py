"""Executing a parsed Go template over plain data, in a sandbox.

Semantics follow Go's ``text/template/exec.go``: pipelines pass their value as the last argument,
``and``/``or`` stop early, variables are scoped to the control structure that declares them,
``range`` walks lists in order and maps by sorted key (``break``/``continue``), a missing map key
is Go's invalid value (``<no value>``; ``missingkey=zero`` and ``=error`` as Go's options).

The sandbox: data is only dicts, lists and scalars (no attribute of a Python object is ever
read); every run has a deadline, a budget of steps (nodes walked, range iterations, calls), a cap
on the output and on any value a function returns, and a cap on nested template calls. Errors are
one line, like Go's: ``template: NAME:LINE:COL: executing "NAME" at <.x.y>: ...``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubectl_iter8.errors import TemplateBoundsError, TemplateError, TemplateExecError

from .funcs import Func, FuncError
from .nodes import (
    ActionNode,
    Arg,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    Pos,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)
from .values import NO_VALUE, GoStruct, format_v, is_true, sorted_keys, type_of

MissingKey = Literal["default", "zero", "error"]
#: No value piped into a command (Go's ``missingVal``), as opposed to a piped nil.
_MISSING: Any = object()


@dataclass(frozen=True)
class Limits:
    """The sandbox's bounds for one execution."""

    #: Wall-clock seconds for the whole execution.
    seconds: float = 5.0
    #: Characters written, counting what ``include``/``tpl`` capture (and of any one string a
    #: function returns).
    output: int = 1_000_000
    #: Nodes walked + range iterations + function calls.
    steps: int = 1_000_000
    #: Nested ``template``/``include``/``tpl`` calls.
    depth: int = 100
    #: Elements in any one list or map a function returns (counted through nesting).
    elements: int = 100_000


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    """One execution of a template set; not reusable."""

    def __init__(
        self,
        name: str,
        templates: Mapping[str, ListNode],
        funcs: Mapping[str, Func],
        limits: Limits,
        missing_key: MissingKey = "default",
        parse_more: Callable[[Executor, str, Any], str] | None = None,
    ) -> None:
        self.top = name
        self.current = name
        self.templates = dict(templates)
        self.funcs = funcs
        self.limits = limits
        self.missing_key = missing_key
        self.parse_more = parse_more
        self.out: list[str] = []
        self.written = 0
        self.steps = 0
        self.depth = 0
        self.deadline = time.monotonic() + limits.seconds
        self.vars: list[tuple[str, Any]] = []
        self.node: Any = None

    # --- errors and limits --------------------------------------------------------------------

    def _location(self, node: Any) -> str:
        pos: Pos | None = getattr(node, "pos", None)
        if pos is None:
            return f"template: {self.top}"
        # Go counts columns from 0.
        return f"template: {self.top}:{pos.line}:{pos.col - 1}"

    def error(
        self, message: str, node: Any = None, cls: type[TemplateError] = TemplateExecError
    ) -> TemplateError:
        node = node if node is not None else self.node
        context = _context(node)
        where = self._location(node)
        if context:
            return cls(f'{where}: executing "{self.current}" at <{context}>: {message}')
        return cls(f'{where}: executing "{self.current}": {message}')

    def step(self, node: Any) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise self.error(
                f"stopped after {self.limits.steps} steps (the sandbox's limit)", node, TemplateBoundsError
            )
        if self.steps % 64 == 0 and time.monotonic() > self.deadline:
            raise self.error(
                f"stopped after {self.limits.seconds:g}s (the sandbox's time limit)",
                node,
                TemplateBoundsError,
            )

    def write(self, text: str) -> None:
        self.written += len(text)
        if self.written > self.limits.output:
            raise self.error(
                f"output larger than {self.limits.output} characters (the sandbox's limit)",
                cls=TemplateBoundsError,
            )
        self.out.append(text)

    def check_value(self, value: Any, name: str) -> Any:
        """Bound what a function returned: strings by the output cap, containers by elements."""
        if isinstance(value, str):
            if len(value) > self.limits.output:
                raise self.error(
                    f"{name} returned more than {self.limits.output} characters (the sandbox's limit)",
                    cls=TemplateBoundsError,
                )
        elif isinstance(value, list | tuple | dict):
            budget = self.limits.elements
            stack: list[Any] = [value]
            while stack:
                item = stack.pop()
                if isinstance(item, dict):
                    budget -= len(item)
                    stack.extend(v for v in item.values() if isinstance(v, list | tuple | dict))
                elif isinstance(item, list | tuple):
                    budget -= len(item)
                    stack.extend(v for v in item if isinstance(v, list | tuple | dict))
                if budget < 0:
                    raise self.error(
                        f"{name} returned more than {self.limits.elements} elements (the sandbox's limit)",
                        cls=TemplateBoundsError,
                    )
        return value

    # --- variables ----------------------------------------------------------------------------

    def push(self, name: str, value: Any) -> None:
        self.vars.append((name, value))

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        name = self.vars[len(self.vars) - n][0]
        self.vars[len(self.vars) - n] = (name, value)

    def var(self, name: str) -> Any:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                return self.vars[i][1]
        raise self.error(f"undefined variable: {name}")

    # --- running ------------------------------------------------------------------------------

    def run(self, root: ListNode, data: Any) -> str:
        if data is None:
            data = NO_VALUE
        self.vars = [("$", data)]
        self.walk(data, root)
        return "".join(self.out)

    def walk(self, dot: Any, node: Node) -> None:
        self.step(node)
        self.node = node
        if isinstance(node, TextNode):
            self.write(node.text)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decls:
                self.node = node.pipe
                self.write(format_v(value, top=True))
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, IfNode | WithNode):
            mark = self.mark()
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
            self.pop(mark)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        else:  # pragma: no cover - the parser makes no other node
            raise self.error(f"unknown node {node!r}")

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        mark = self.mark()
        value = self.eval_pipeline(dot, node.pipe)
        inner = self.mark()
        decls = node.pipe.decls

        def one(index: Any, elem: Any) -> bool:
            """Run the body once; False to stop (break)."""
            self.step(node)
            if decls:
                if node.pipe.is_assign:
                    self.set_var(decls[0], index if len(decls) > 1 else elem)
                else:
                    self.set_top_var(1, elem)
            if len(decls) > 1:
                if node.pipe.is_assign:
                    self.set_var(decls[1], elem)
                else:
                    self.set_top_var(2, index)
            try:
                self.walk(elem, node.body)
            except _Break:
                return False
            except _Continue:
                pass
            finally:
                self.pop(inner)
            return True

        ran = False
        if isinstance(value, list | tuple):
            for index, elem in enumerate(list(value)):
                ran = True
                if not one(index, elem):
                    break
        elif isinstance(value, dict) and not isinstance(value, GoStruct):
            for key in sorted_keys(value):
                ran = True
                if not one(key, value[key]):
                    break
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(decls) > 1:
                raise self.error("can't use (int) to iterate over more than one variable", node)
            for index in range(value):
                ran = True
                if not one(index, index):
                    break
        elif isinstance(value, str):
            for index, ch in enumerate(value):
                ran = True
                if not one(index, ord(ch)):
                    break
        elif value is not None and value is not NO_VALUE:
            raise self.error(f"range can't iterate over {format_v(value, top=False)}", node)
        if not ran and node.else_body is not None:
            self.walk(dot, node.else_body)
        self.pop(mark)

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        body = self.templates.get(node.name)
        if body is None:
            raise self.error(f'template "{node.name}" not defined', node)
        # Without a pipeline the template's dot is Go's invalid value, not nil: fields of it are
        # "no value", not errors.
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else NO_VALUE
        self.call_template(node.name, body, value, node)

    def call_template(self, name: str, body: ListNode, data: Any, node: Any) -> None:
        if self.depth >= self.limits.depth:
            raise self.error(
                f"exceeded maximum template depth ({self.limits.depth})", node, TemplateBoundsError
            )
        saved_vars, saved_name = self.vars, self.current
        self.vars = [("$", data)]
        self.current = name
        self.depth += 1
        try:
            self.walk(data, body)
        finally:
            self.depth -= 1
            self.vars, self.current = saved_vars, saved_name

    def capture(self, name: str, data: Any) -> str:
        """Helm's ``include``: a defined template's output as a string."""
        body = self.templates.get(name)
        if body is None:
            raise FuncError(f'no template "{name}" associated with template "{self.top}"')
        saved_out = self.out
        self.out = []
        try:
            self.call_template(name, body, data, self.node)
            return "".join(self.out)
        finally:
            self.out = saved_out

    # --- pipelines ----------------------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.node = pipe
        value: Any = _MISSING
        for command in pipe.commands:
            value = self.eval_command(dot, command, value)
        for name in pipe.decls:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.push(name, value)
        return value

    def eval_command(self, dot: Any, command: CommandNode, final: Any) -> Any:
        first = command.args[0]
        self.node = first
        if isinstance(first, FieldNode):
            return self.eval_field_chain(dot, dot, first, first.names, command.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, command.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, command.args, final, command)
        if isinstance(first, PipeNode):
            self.not_a_function(command.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, command.args, final)
        self.not_a_function(command.args, final)
        if isinstance(first, NilNode):
            raise self.error("nil is not a command", first)
        return self.literal(dot, first)

    def literal(self, dot: Any, node: Arg) -> Any:
        if isinstance(node, BoolNode | NumberNode | StringNode):
            return node.value
        if isinstance(node, DotNode):
            return dot
        return None

    def not_a_function(self, args: list[Arg], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.error(f"can't give argument to non-function {args[0]}", args[0])

    def eval_arg(self, dot: Any, node: Arg) -> Any:
        self.node = node
        if isinstance(node, FieldNode):
            return self.eval_field_chain(dot, dot, node, node.names, [node], _MISSING)
        if isinstance(node, VariableNode):
            return self.eval_variable(dot, node, [node], _MISSING)
        if isinstance(node, PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, IdentifierNode):
            return self.eval_function(dot, node, [node], _MISSING)
        if isinstance(node, ChainNode):
            return self.eval_chain(dot, node, [node], _MISSING)
        return self.literal(dot, node)

    def eval_variable(self, dot: Any, node: VariableNode, args: list[Arg], final: Any) -> Any:
        value = self.var(node.name)
        if not node.fields:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.fields, args, final)

    def eval_chain(self, dot: Any, node: ChainNode, args: list[Arg], final: Any) -> Any:
        if isinstance(node.node, NilNode):
            raise self.error("indirection through explicit nil in " + str(node), node)
        value = self.eval_arg(dot, node.node)
        return self.eval_field_chain(dot, value, node, node.fields, args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Any, names: list[str], args: list[Arg], final: Any
    ) -> Any:
        for name in names[:-1]:
            receiver = self.eval_field(name, node, [], _MISSING, receiver)
        return self.eval_field(names[-1], node, args, final, receiver)

    def eval_field(self, name: str, node: Any, args: list[Arg], final: Any, receiver: Any) -> Any:
        has_args = len(args) > 1 or final is not _MISSING
        if receiver is NO_VALUE:
            if self.missing_key == "error":
                raise self.error(f'nil data; no entry for key "{name}"', node)
            return NO_VALUE
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}", node)
        if isinstance(receiver, GoStruct):
            found, value = receiver.field(name)
            if not found:
                raise self.error(f"can't evaluate field {name} in type {receiver.type_name}", node)
            if has_args:
                raise self.error(f"{name} has arguments but cannot be invoked as function", node)
            return value
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments", node)
            if name in receiver:
                return receiver[name]
            if self.missing_key == "error":
                raise self.error(f'map has no entry for key "{name}"', node)
            return None if self.missing_key == "zero" else NO_VALUE
        raise self.error(f"can't evaluate field {name} in type {type_of(receiver)}", node)

    def eval_function(
        self, dot: Any, node: IdentifierNode, args: list[Arg], final: Any, command: Any = None
    ) -> Any:
        name = node.name
        where = command if command is not None else node
        if name in ("and", "or"):
            return self.and_or(dot, node, args, final)
        func = self.funcs[name]
        argv = [self.eval_arg(dot, arg) for arg in args[1:]]
        if final is not _MISSING:
            argv.append(final)
        argv = [None if a is NO_VALUE else a for a in argv]
        self.node = where
        self.step(where)
        if len(argv) < func.min_args or (func.max_args is not None and len(argv) > func.max_args):
            if func.max_args is None:
                want = f"at least {func.min_args}"
            elif func.min_args == func.max_args:
                want = str(func.min_args)
            else:
                want = f"{func.min_args} to {func.max_args}"
            raise self.error(f"wrong number of args for {name}: want {want} got {len(argv)}", where)
        try:
            result = func.fn(self, *argv) if func.needs_state else func.fn(*argv)
        except TemplateError:
            raise
        except (
            FuncError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            ZeroDivisionError,
            OverflowError,
        ) as exc:
            message = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise self.error(f"error calling {name}: {message}", where) from None
        except RecursionError:
            raise self.error(f"error calling {name}: nested too deeply", where, TemplateBoundsError) from None
        return self.check_value(result, name)

    def and_or(self, dot: Any, node: IdentifierNode, args: list[Arg], final: Any) -> Any:
        name = node.name
        count = len(args) - 1 + (0 if final is _MISSING else 1)
        if count < 1:
            raise self.error(f"wrong number of args for {name}: want at least 1 got 0", node)
        value: Any = None
        for arg in args[1:]:
            value = self.eval_arg(dot, arg)
            if is_true(value) == (name == "or"):
                return value
        if final is not _MISSING:
            return final
        return value


def _context(node: Any) -> str:
    if node is None or isinstance(node, TextNode | ListNode | IfNode | WithNode | RangeNode):
        return ""
    if isinstance(node, ActionNode):
        node = node.pipe
    if isinstance(node, TemplateNode):
        text = f'{{{{template "{node.name}"' + (f" {node.pipe}" if node.pipe else "") + "}}"
    elif isinstance(node, BreakNode | ContinueNode):
        return ""
    else:
        text = str(node)
    return text if len(text) <= 20 else text[:20] + "..."
