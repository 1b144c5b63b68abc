"""Arithmetic from untrusted text, parsed with `ast` and evaluated over exact fractions: never eval()."""
from __future__ import annotations

import ast
from fractions import Fraction

_BIN = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.Mod: lambda a, b: a % b, ast.FloorDiv: lambda a, b: a // b}


class InvalidExpression(ValueError):
    pass


def evaluate(expr: str, *, floats: bool = True, unary: bool = True, power: bool = True,
             ops: tuple[type, ...] | None = None) -> tuple[Fraction, list]:
    """Exact value of `expr` and the numeric literals it used. Only numbers, parentheses and the allowed operators
    parse; anything else (names, calls, attributes) is an InvalidExpression."""
    allowed = ops or tuple(_BIN)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise InvalidExpression(f"not an arithmetic expression: {e.msg}") from None
    used: list = []

    def walk(node) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in allowed:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, (ast.Div, ast.Mod, ast.FloorDiv)) and right == 0:
                raise InvalidExpression("division by zero")
            return _BIN[type(node.op)](left, right)
        if power and isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            base, exp = walk(node.left), walk(node.right)
            if exp.denominator != 1 or abs(exp) > 64 or abs(base) > 10**12:
                raise InvalidExpression("exponent too large or not an integer")
            if base == 0 and exp < 0:
                raise InvalidExpression("division by zero")
            return base ** int(exp)
        if unary and isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant) and (type(node.value) is int or (floats and type(node.value) is float)):
            used.append(node.value)
            return Fraction(node.value)
        raise InvalidExpression(f"not allowed: {type(node).__name__}")

    return walk(tree), used


def number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)
