"""The parse tree of a Go template, as Go's ``text/template/parse`` builds it.

Every node keeps its (line, column) so that execution errors can say where they happened, and
``str(node)`` gives the node back as template text, which Go's errors quote (``at <.x.y>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Pos:
    line: int
    col: int


@dataclass
class TextNode:
    pos: Pos
    text: str


@dataclass
class FieldNode:
    """``.a.b``: fields of dot."""

    pos: Pos
    names: list[str]

    def __str__(self) -> str:
        return "".join("." + name for name in self.names)


@dataclass
class VariableNode:
    """``$x.a.b``: a variable, then fields of its value."""

    pos: Pos
    name: str
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.name + "".join("." + name for name in self.fields)


@dataclass
class ChainNode:
    """``(pipeline).a.b``: fields of a parenthesized pipeline's (or a function's) value."""

    pos: Pos
    node: Arg
    fields: list[str]

    def __str__(self) -> str:
        return f"({self.node})" + "".join("." + name for name in self.fields)


@dataclass
class IdentifierNode:
    """A function's name."""

    pos: Pos
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class DotNode:
    pos: Pos

    def __str__(self) -> str:
        return "."


@dataclass
class NilNode:
    pos: Pos

    def __str__(self) -> str:
        return "nil"


@dataclass
class BoolNode:
    pos: Pos
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass
class NumberNode:
    pos: Pos
    value: int | float
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class StringNode:
    pos: Pos
    value: str
    quoted: str

    def __str__(self) -> str:
        return self.quoted


@dataclass
class CommandNode:
    pos: Pos
    args: list[Arg]

    def __str__(self) -> str:
        return " ".join(f"({arg})" if isinstance(arg, PipeNode) else str(arg) for arg in self.args)


@dataclass
class PipeNode:
    pos: Pos
    decls: list[str]
    is_assign: bool
    commands: list[CommandNode]

    def __str__(self) -> str:
        text = " | ".join(str(cmd) for cmd in self.commands)
        if self.decls:
            return f"{', '.join(self.decls)} {'=' if self.is_assign else ':='} {text}"
        return text


Arg = (
    FieldNode
    | VariableNode
    | ChainNode
    | IdentifierNode
    | DotNode
    | NilNode
    | BoolNode
    | NumberNode
    | StringNode
    | PipeNode
)


@dataclass
class ActionNode:
    pos: Pos
    pipe: PipeNode


@dataclass
class ListNode:
    pos: Pos
    nodes: list[Node] = field(default_factory=list)


@dataclass
class IfNode:
    pos: Pos
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class WithNode:
    pos: Pos
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class RangeNode:
    pos: Pos
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class BreakNode:
    pos: Pos


@dataclass
class ContinueNode:
    pos: Pos


@dataclass
class TemplateNode:
    """``{{template "name" pipeline}}``."""

    pos: Pos
    name: str
    pipe: PipeNode | None


Node = (
    TextNode | ActionNode | ListNode | IfNode | WithNode | RangeNode | BreakNode | ContinueNode | TemplateNode
)
