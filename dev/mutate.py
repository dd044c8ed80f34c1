"""Mutation testing: plant one small bug at a time in a copy of the checkout and see whether the tests
that cover that module notice (a killed mutant) or not (a survivor to look at).

Mutations (on the module's syntax tree): a comparison turned around (== !=, < >=, > <=, is / is not,
in / not in), and / or swapped, + -, & |, << >> swapped, a small integer off by one, an augmented
assignment (x |= y) dropped, a `not` dropped, a returned True/False flipped.

    python dev/mutate.py                      # every module below, 12 mutants each
    python dev/mutate.py --per-module 30 --module hw/aarch64/translate.py --seed 7

Prints one line per mutant (killed / SURVIVED, where, what) and a summary. Needs ../shared beside the
checkout (or PAGEWALK_SHARED), as the tests do.
"""

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Module (under src/pagewalk) -> the tests that cover it, fast enough to run once per mutant.
SELECTIONS = {
    "hw/aarch64/translate.py": ["tests/test_vmsa.py", "tests/test_translate_props.py"],
    "hw/aarch64/descriptor.py": ["tests/test_vmsa.py", "tests/test_translate_props.py"],
    "hw/aarch64/bits.py": ["tests/test_vmsa.py", "tests/test_translate_props.py"],
    "mm/pagewalk.py": ["tests/test_pagewalk_spec.py", "tests/test_pagewalk_props.py", "tests/test_traces.py"],
    "arch/arm64/asm/pgtable.py": ["tests/test_pagewalk_spec.py", "tests/test_traces.py"],
    "arch/arm64/mm/pageattr.py": ["tests/test_pageattr_spec.py", "tests/test_pageattr_traces.py"],
}
SWAPS = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
         ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.And: ast.Or, ast.Or: ast.And,
         ast.Add: ast.Sub, ast.Sub: ast.Add, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.LShift: ast.RShift,
         ast.RShift: ast.LShift}


def mutation_points(tree: ast.AST) -> list[tuple[int, str]]:
    """(index in ast.walk order, description) of every place one mutation can go."""
    points = []
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            points.append((i, f"{type(node.ops[0]).__name__} -> {SWAPS[type(node.ops[0])].__name__}"))
        elif isinstance(node, (ast.BoolOp, ast.BinOp)) and type(node.op) in SWAPS:
            points.append((i, f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}"))
        elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 64:
            points.append((i, f"{node.value} -> {node.value + 1}"))
        elif isinstance(node, ast.AugAssign):
            points.append((i, "augmented assignment dropped"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            points.append((i, "`not` dropped"))
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and type(node.value.value) is bool:
            points.append((i, f"return {node.value.value} -> {not node.value.value}"))
    return points


class _Mutate(ast.NodeTransformer):
    def __init__(self, target: int, nodes: list):
        self.target = nodes[target]

    def visit(self, node):
        if node is not self.target:
            return self.generic_visit(node)
        if isinstance(node, ast.Compare):
            node.ops[0] = SWAPS[type(node.ops[0])]()
        elif isinstance(node, (ast.BoolOp, ast.BinOp)):
            node.op = SWAPS[type(node.op)]()
        elif isinstance(node, ast.Constant):
            node.value += 1
        elif isinstance(node, ast.AugAssign):
            return ast.copy_location(ast.Pass(), node)
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node, ast.Return):
            node.value.value = not node.value.value
        return node


def mutant_source(source: str, index: int) -> str:
    tree = ast.parse(source)
    mutated = _Mutate(index, list(ast.walk(tree))).visit(tree)
    return ast.unparse(ast.fix_missing_locations(mutated))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(SELECTIONS), help="default: all of them")
    parser.add_argument("--per-module", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=120, help="seconds before a mutant counts as hung")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shared = os.environ.get("PAGEWALK_SHARED", str(REPO.parent / "shared"))
    killed = survived = 0
    with tempfile.TemporaryDirectory(prefix="pagewalk-mutants-") as work:
        copy = Path(work) / "repo"
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", ".hypothesis"))
        for module in args.module or SELECTIONS:
            path = copy / "src" / "pagewalk" / module
            original = path.read_text()
            nodes = list(ast.walk(ast.parse(original)))
            points = mutation_points(ast.parse(original))
            for index, what in sorted(rng.sample(points, min(args.per_module, len(points)))):
                line = getattr(nodes[index], "lineno", "?")
                path.write_text(mutant_source(original, index))
                try:
                    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                           "--hypothesis-seed=0", *SELECTIONS[module]], cwd=copy,
                                          capture_output=True, env=dict(os.environ, PAGEWALK_SHARED=shared),
                                          timeout=args.timeout)
                    dead, how = proc.returncode != 0, ""
                except subprocess.TimeoutExpired:            # a mutant that hangs is noticed too
                    dead, how = True, f" (hung: over {args.timeout} s)"
                finally:
                    path.write_text(original)
                killed, survived = killed + dead, survived + (not dead)
                print(f"{'killed  ' if dead else 'SURVIVED'} {module}:{line}  {what}{how}", flush=True)
    print(f"{killed + survived} mutants: {killed} killed, {survived} survived")


if __name__ == "__main__":
    main()
