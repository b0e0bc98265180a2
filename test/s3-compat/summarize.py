"""Pass/fail per category of ceph's s3-tests from a JUnit report; exit 1 when a test fails that the
suite does not mark fails_on_aws (those fail on Amazon S3 itself)."""

import argparse
import ast
import json
import pathlib
import sys
import xml.etree.ElementTree as ET


def aws_failing(suite: pathlib.Path) -> set[str]:
    """Names of test functions decorated with pytest.mark.fails_on_aws."""
    tree = ast.parse((suite / "s3tests/functional/test_s3.py").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if isinstance(d, ast.Attribute) and d.attr == "fails_on_aws":
                    names.add(node.name)
    return names


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--junit", required=True)
    p.add_argument("--inscope", required=True)
    p.add_argument("--suite", required=True)
    p.add_argument("--json")
    args = p.parse_args()

    outcome = {}
    for case in ET.parse(args.junit).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        outcome[case.get("name")] = "failed" if failed else "skipped" if skipped else "passed"

    expected_failures = aws_failing(pathlib.Path(args.suite))
    categories = {}
    unexpected = []
    for listing in sorted(pathlib.Path(args.inscope).glob("*.txt")):
        names = [line.strip().split("::")[-1] for line in listing.read_text().splitlines() if line.strip()]
        row = {"total": len(names), "passed": 0, "failed": [], "failsOnAws": [], "notRun": []}
        for name in names:
            result = outcome.get(name)
            if result == "passed":
                row["passed"] += 1
            elif result is None:
                row["notRun"].append(name)
                unexpected.append(name)
            elif name in expected_failures:
                row["failsOnAws"].append(name)
            else:
                row["failed"].append(name)
                unexpected.append(name)
        categories[listing.stem] = row

    print(f"{'category':<14} {'passed':>7} {'total':>6}  failing")
    for name, row in categories.items():
        failing = ", ".join(row["failed"] + [f"{n} (fails_on_aws)" for n in row["failsOnAws"]] + [f"{n} (not run)" for n in row["notRun"]])
        print(f"{name:<14} {row['passed']:>7} {row['total']:>6}  {failing}")
    passed = sum(r["passed"] for r in categories.values())
    total = sum(r["total"] for r in categories.values())
    print(f"{'all':<14} {passed:>7} {total:>6}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"passed": passed, "total": total, "categories": categories}, indent=2) + "\n")
    if unexpected:
        print(f"s3-tests: {len(unexpected)} in-scope test(s) failed that pass on Amazon S3: {', '.join(unexpected)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
