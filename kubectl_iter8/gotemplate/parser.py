"""The parser of Go's text/template: items -> a tree per template (the main one and each ``define``).

It follows Go's ``text/template/parse/parse.go``, including its parse-time checks: an unknown
function or an undefined variable is an error before anything runs, ``break``/``continue`` only
inside ``range``, ``define`` only at the top level, and a literal cannot start a later stage of a
pipeline.
"""

from __future__ import annotations

from collections.abc import Container

from kubectl_iter8.errors import TemplateParseError

from .funcs import REFUSED
from .lexer import Item, Kind, Lexer
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

_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


def unquote(quoted: str) -> str:
    """A Go interpreted string or character literal's value (``"a\\tb"``, ``'x'``)."""
    body = quoted[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError("invalid syntax")
        esc = body[i + 1]
        if esc in _ESCAPES:
            if (esc == "'" and quoted[0] == '"') or (esc == '"' and quoted[0] == "'"):
                raise ValueError("invalid syntax")
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2 : i + 2 + size]
            if len(digits) != size or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            code = int(digits, 16)
            if esc == "x":
                out.append(bytes([code]).decode("latin-1"))
            else:
                out.append(chr(code))
            i += 2 + size
        elif esc in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(c not in "01234567" for c in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


def parse_number(text: str) -> int | float:
    """A Go number literal's value: an int unless it has a fraction or exponent (as Go's templates do)."""
    if text.startswith("'"):
        value = unquote(text)
        if len(value) != 1:
            raise ValueError("invalid character constant")
        return ord(value)
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    is_hex = body[:2].lower() == "0x"
    if (not is_hex and any(c in body for c in ".eE")) or (is_hex and any(c in body for c in ".pP")):
        return sign * (float.fromhex(body) if is_hex else float(body))
    if len(body) > 1 and body[0] == "0" and body[1].isdigit():
        return sign * int(body, 8)
    return sign * int(body, 0)


class _End:
    def __init__(self, item: Item) -> None:
        self.item = item


class _Else:
    def __init__(self, item: Item) -> None:
        self.item = item


class Parser:
    """Parses one template text; :attr:`templates` holds its ``define`` d and ``block`` templates."""

    def __init__(self, text: str, name: str, funcs: Container[str]) -> None:
        self.name = name
        self.lexer = Lexer(text, name)
        self.items = self.lexer.run()
        self.index = 0
        self.funcs = funcs
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.templates: dict[str, ListNode] = {}

    # --- items --------------------------------------------------------------------------------

    def next(self) -> Item:
        item = self.items[self.index]
        if item.kind is not Kind.EOF:
            self.index += 1
        return item

    def peek(self) -> Item:
        return self.items[self.index]

    def next_non_space(self) -> Item:
        item = self.next()
        while item.kind is Kind.SPACE:
            item = self.next()
        return item

    def peek_non_space(self) -> Item:
        index = self.index
        while self.items[index].kind is Kind.SPACE:
            index += 1
        return self.items[index]

    def error(self, message: str, item: Item | None = None) -> TemplateParseError:
        line = (item or self.items[max(0, self.index - 1)]).line
        return TemplateParseError(f"template: {self.name}:{line}: {message}")

    def unexpected(self, item: Item, context: str) -> TemplateParseError:
        if item.kind is Kind.EOF:
            return self.error(f"unexpected EOF in {context}", item)
        return self.error(f"unexpected {item} in {context}", item)

    def expect(self, kind: Kind, context: str) -> Item:
        item = self.next_non_space()
        if item.kind is not kind:
            raise self.unexpected(item, context)
        return item

    @staticmethod
    def pos(item: Item) -> Pos:
        return Pos(item.line, item.col)

    # --- structure ----------------------------------------------------------------------------

    def parse(self) -> ListNode:
        root = ListNode(Pos(1, 1))
        while self.peek().kind is not Kind.EOF:
            if self.peek().kind is Kind.LEFT:
                mark = self.index
                self.next()
                item = self.next_non_space()
                if item.kind is Kind.KEYWORD and item.value == "define":
                    self.define(item)
                    continue
                self.index = mark
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                raise self.error(
                    f"unexpected {{{{{'end' if isinstance(node, _End) else 'else'}}}}}", node.item
                )
            root.nodes.append(node)
        return root

    def add_template(self, name: str, body: ListNode) -> None:
        # As Go: a later empty definition does not replace an earlier one.
        if name in self.templates and _is_empty(body):
            return
        self.templates[name] = body

    def define(self, start: Item) -> None:
        context = "define clause"
        name = self.template_name(self.next_non_space(), context)
        self.expect(Kind.RIGHT, context)
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            raise self.unexpected(end.item, context)
        self.add_template(name, body)

    def item_list(self) -> tuple[ListNode, _End | _Else]:
        body = ListNode(self.pos(self.peek()))
        while self.peek_non_space().kind is not Kind.EOF:
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                return body, node
            body.nodes.append(node)
        raise self.error("unexpected EOF", self.peek())

    def text_or_action(self) -> Node | _End | _Else:
        item = self.next_non_space()
        if item.kind is Kind.TEXT:
            return TextNode(self.pos(item), item.value)
        if item.kind is Kind.LEFT:
            return self.action()
        raise self.unexpected(item, "input")

    def action(self) -> Node | _End | _Else:
        mark = self.index
        item = self.next_non_space()
        if item.kind is Kind.KEYWORD:
            keyword = item.value
            if keyword == "end":
                self.expect(Kind.RIGHT, "end")
                return _End(item)
            if keyword == "else":
                following = self.peek_non_space()
                if not (following.kind is Kind.KEYWORD and following.value in ("if", "with")):
                    self.expect(Kind.RIGHT, "else")
                return _Else(item)
            if keyword in ("if", "with", "range"):
                return self.control(keyword, item)
            if keyword == "template":
                return self.template_control(item)
            if keyword == "block":
                return self.block_control(item)
            if keyword in ("break", "continue"):
                if self.range_depth == 0:
                    raise self.error(f"{{{{{keyword}}}}} outside {{{{range}}}}", item)
                self.expect(Kind.RIGHT, f"{{{{{keyword}}}}}")
                return BreakNode(self.pos(item)) if keyword == "break" else ContinueNode(self.pos(item))
            if keyword == "define":
                raise self.error("unexpected <define> in command", item)
        self.index = mark
        start = self.peek_non_space()
        return ActionNode(self.pos(start), self.pipeline("command", Kind.RIGHT))

    def control(self, context: str, start: Item) -> Node:
        mark = len(self.vars)
        pipe = self.pipeline(context, Kind.RIGHT)
        if context == "range":
            self.range_depth += 1
        body, end = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_body: ListNode | None = None
        if isinstance(end, _Else):
            following = self.peek_non_space()
            if following.kind is Kind.KEYWORD and following.value in ("if", "with"):
                if following.value != context:
                    raise self.unexpected(following, context)
                # {{else if}} / {{else with}}: a nested control that shares the final {{end}}.
                nested_start = self.next_non_space()
                else_body = ListNode(self.pos(nested_start), [self.control(context, nested_start)])
            else:
                else_body, end = self.item_list()
                if not isinstance(end, _End):
                    raise self.error("expected end; found {{else}}", end.item)
        del self.vars[mark:]
        pos = self.pos(start)
        if context == "if":
            return IfNode(pos, pipe, body, else_body)
        if context == "with":
            return WithNode(pos, pipe, body, else_body)
        return RangeNode(pos, pipe, body, else_body)

    def template_name(self, item: Item, context: str) -> str:
        if item.kind in (Kind.STRING, Kind.RAW_STRING):
            try:
                return item.value[1:-1] if item.kind is Kind.RAW_STRING else unquote(item.value)
            except ValueError:
                raise self.error(f"invalid string {item.value}", item) from None
        raise self.unexpected(item, context)

    def template_control(self, start: Item) -> TemplateNode:
        context = "template clause"
        name = self.template_name(self.next_non_space(), context)
        pipe: PipeNode | None = None
        if self.peek_non_space().kind is not Kind.RIGHT:
            pipe = self.pipeline(context, Kind.RIGHT)
        else:
            self.next_non_space()
        return TemplateNode(self.pos(start), name, pipe)

    def block_control(self, start: Item) -> TemplateNode:
        context = "block clause"
        name = self.template_name(self.next_non_space(), context)
        pipe = self.pipeline(context, Kind.RIGHT)
        saved, saved_depth = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        self.vars, self.range_depth = saved, saved_depth
        if not isinstance(end, _End):
            raise self.unexpected(end.item, context)
        self.add_template(name, body)
        return TemplateNode(self.pos(start), name, pipe)

    # --- pipelines ----------------------------------------------------------------------------

    def pipeline(self, context: str, end: Kind) -> PipeNode:
        start = self.peek_non_space()
        pipe = PipeNode(self.pos(start), [], False, [])
        while True:
            candidate = self.peek_non_space()
            if candidate.kind is not Kind.VARIABLE:
                break
            mark = self.index
            self.next_non_space()
            following = self.peek_non_space()
            if following.kind in (Kind.ASSIGN, Kind.DECLARE):
                self.next_non_space()
                pipe.is_assign = following.kind is Kind.ASSIGN
                if pipe.is_assign and candidate.value not in self.vars:
                    raise self.error(f"undefined variable {candidate.value!r}".replace("'", '"'), candidate)
                pipe.decls.append(candidate.value)
                self.vars.append(candidate.value)
                break
            if following.kind is Kind.COMMA:
                self.next_non_space()
                pipe.decls.append(candidate.value)
                self.vars.append(candidate.value)
                if context == "range" and len(pipe.decls) < 2:
                    if self.peek_non_space().kind in (Kind.VARIABLE, Kind.RIGHT, Kind.RIGHT_PAREN):
                        continue
                    raise self.error("range can only initialize variables", following)
                raise self.error(f"too many declarations in {context}", following)
            self.index = mark
            break
        while True:
            item = self.next_non_space()
            if item.kind is end:
                self.check_pipeline(pipe, context, item)
                return pipe
            if item.kind in (
                Kind.BOOL,
                Kind.CHAR,
                Kind.DOT,
                Kind.FIELD,
                Kind.IDENTIFIER,
                Kind.NUMBER,
                Kind.NIL,
                Kind.RAW_STRING,
                Kind.STRING,
                Kind.VARIABLE,
                Kind.LEFT_PAREN,
            ):
                self.index -= 1
                pipe.commands.append(self.command())
            else:
                raise self.unexpected(item, context)

    def check_pipeline(self, pipe: PipeNode, context: str, item: Item) -> None:
        if not pipe.commands:
            raise self.error(f"missing value for {context}", item)
        for stage, command in enumerate(pipe.commands[1:], start=2):
            if isinstance(command.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                raise self.error(f"non executable command in pipeline stage {stage}", item)

    def command(self) -> CommandNode:
        start = self.peek_non_space()
        command = CommandNode(self.pos(start), [])
        while True:
            self.peek_non_space()
            while self.peek().kind is Kind.SPACE:
                self.next()
            operand = self.operand()
            if operand is not None:
                command.args.append(operand)
            item = self.next()
            if item.kind is Kind.SPACE:
                continue
            if item.kind in (Kind.RIGHT, Kind.RIGHT_PAREN):
                self.index -= 1
            elif item.kind is not Kind.PIPE:
                raise self.unexpected(item, "operand")
            break
        if not command.args:
            raise self.error("empty command", start)
        return command

    def operand(self) -> Arg | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind is Kind.FIELD:
            fields: list[str] = []
            while self.peek().kind is Kind.FIELD:
                fields.append(self.next().value[1:])
            if isinstance(node, FieldNode):
                return FieldNode(node.pos, [*node.names, *fields])
            if isinstance(node, VariableNode):
                return VariableNode(node.pos, node.name, [*node.fields, *fields])
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                raise self.error(f"unexpected . after term {str(node)!r}".replace("'", '"'))
            return ChainNode(node.pos, node, fields)
        return node

    def term(self) -> Arg | None:
        item = self.next_non_space()
        pos = self.pos(item)
        kind = item.kind
        if kind is Kind.IDENTIFIER:
            if item.value in REFUSED:
                reason = REFUSED[item.value]
                raise self.error(f'function "{item.value}" is not available in this sandbox ({reason})', item)
            if item.value not in self.funcs:
                raise self.error(f'function "{item.value}" not defined', item)
            return IdentifierNode(pos, item.value)
        if kind is Kind.DOT:
            return DotNode(pos)
        if kind is Kind.NIL:
            return NilNode(pos)
        if kind is Kind.VARIABLE:
            if item.value not in self.vars:
                raise self.error(f'undefined variable "{item.value}"', item)
            return VariableNode(pos, item.value)
        if kind is Kind.FIELD:
            return FieldNode(pos, [item.value[1:]])
        if kind is Kind.BOOL:
            return BoolNode(pos, item.value == "true")
        if kind in (Kind.NUMBER, Kind.CHAR):
            try:
                return NumberNode(pos, parse_number(item.value), item.value)
            except ValueError:
                raise self.error(f"illegal number syntax: {item.value!r}".replace("'", '"'), item) from None
        if kind is Kind.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", Kind.RIGHT_PAREN)
        if kind in (Kind.STRING, Kind.RAW_STRING):
            if kind is Kind.RAW_STRING:
                return StringNode(pos, item.value[1:-1], item.value)
            try:
                return StringNode(pos, unquote(item.value), item.value)
            except ValueError:
                raise self.error(f"invalid syntax: {item.value}", item) from None
        self.index -= 1
        return None


def _is_empty(body: ListNode) -> bool:
    return all(isinstance(node, TextNode) and not node.text.strip() for node in body.nodes)


def parse(text: str, name: str, funcs: Container[str]) -> tuple[ListNode, dict[str, ListNode]]:
    """The main tree of ``text`` and its defined templates."""
    parser = Parser(text, name, funcs)
    root = parser.parse()
    return root, parser.templates
