#!/usr/bin/env python3
"""Parse PromQL expressions with promql-parser (PyPI) and print what each one selects.

Reads expressions from stdin, separated by NUL bytes. Prints one JSON object per expression, in
order, one per line:
  {"error": "<parser message>"}                      when it does not parse, or
  {"selectors": [{"name": "<metric or null>", "matchers": [["label", "=", "value"], ...]}],
   "grouping": ["label", ...]}                        the labels named by by/without/on/ignoring.
Used by tests/it/observability.rs; the test decides what is allowed.
"""
import json
import sys

import promql_parser as promql

OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def describe(expr):
    selectors, grouping = [], []

    def visit(node):
        if isinstance(node, promql.VectorSelector):
            matchers = [
                [m.name, OPS.get(str(m.op).rsplit(".", 1)[-1], str(m.op)), m.value]
                for m in node.matchers.matchers
            ]
            selectors.append({"name": node.name, "matchers": matchers})
        elif isinstance(node, promql.AggregateExpr) and node.modifier is not None:
            grouping.extend(node.modifier.labels)
        elif isinstance(node, promql.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            if matching is not None:
                grouping.extend(matching.labels)
        return True

    promql.walk(expr, visit)
    return {"selectors": selectors, "grouping": grouping}


def main():
    for text in sys.stdin.buffer.read().decode().split("\0"):
        try:
            result = describe(promql.parse(text))
        except Exception as error:  # the parser raises ValueError; report anything as a failure
            result = {"error": str(error)}
        print(json.dumps(result))


main()
