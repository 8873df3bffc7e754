"""Offline chart checks with Helm's own Go SDK (the helm-python-sdk wheel): no helm binary,
no cluster, no network. Run it with the tools venv that .ci/helm.sh creates:

    .ci/.venv-helm/bin/python .ci/helm_charts.py deps            # vendor file:// subcharts, fail if one is missing
    .ci/.venv-helm/bin/python .ci/helm_charts.py lint            # strict lint, default + production values
    .ci/.venv-helm/bin/python .ci/helm_charts.py render -f helm/quintet/ci/production-values.yaml -o out.yaml
    .ci/.venv-helm/bin/python .ci/helm_charts.py check --routes routes.json   # .ci/chart_checks.py on every scenario
    echo '[{"values": {...}}]' | .ci/.venv-helm/bin/python .ci/helm_charts.py batch   # JSON in, JSON out (tests)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart_checks

ROOT = Path(__file__).resolve().parent.parent
APP_CHART = ROOT / "helm" / "quintet"
SUBCHARTS = (ROOT / "helm" / "postgres", ROOT / "helm" / "redis")
KUBE_VERSION = "v1.37.0"
RELEASE, NAMESPACE = "quintet", "quintet"


class CheckFailed(Exception):
    pass


def declared_dependencies(chart_dir: Path) -> list[dict[str, Any]]:
    return helm.dependency_list(chart_dir)


def check_dependencies(chart_dir: Path) -> None:
    """Every subchart declared in Chart.yaml is present in charts/ and loads: Helm's offline
    renderer would otherwise drop a missing one without a word."""
    problems = [
        f"{dep['name']} ({dep['repository']}): {dep['status']}"
        for dep in declared_dependencies(chart_dir)
        if dep["status"] != "ok"
    ]
    with helm.Chart.load(chart_dir) as chart:
        declared = {dep["name"] for dep in chart.metadata.get("dependencies", [])}
        loaded = {dep["name"] for dep in chart.dependencies}
    problems += [f"{name}: declared but not loaded" for name in sorted(declared - loaded)]
    if problems:
        raise CheckFailed(
            f"subcharts missing from {chart_dir / 'charts'} ({'; '.join(problems)}); "
            f"run `helm dependency build {chart_dir}` "
            "(or .ci/helm_charts.py deps)"
        )


def build_dependencies(chart_dir: Path) -> None:
    """Re-package the local file:// subcharts into charts/, so they never go stale."""
    shutil.rmtree(chart_dir / "charts", ignore_errors=True)
    helm.dependency_build(chart_dir)
    check_dependencies(chart_dir)


def load_values(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else helm.values_from_yaml(path.read_text())


def render(
    chart_dir: Path,
    values: dict[str, Any] | None,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    upgrade: bool = False,
) -> list[dict[str, Any]]:
    """Schema-check and render like `helm template` (or an upgrade); hooks and tests included,
    NOTES left out."""
    check_dependencies(chart_dir)
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        rendered = chart.render(
            values=values,
            name=release,
            namespace=namespace,
            is_install=not upgrade,
            is_upgrade=upgrade,
            revision=2 if upgrade else 1,
        )
    documents = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                document.setdefault("metadata", {})
                documents.append(document)
    return documents


def lint(chart_dir: Path, values: dict[str, Any] | None, label: str) -> list[str]:
    report = helm.lint(
        chart_dir,
        values,
        strict=True,
        with_subcharts=True,
        kube_version=KUBE_VERSION,
        namespace=NAMESPACE,
    )
    findings = [
        f"{label}: [{('unknown', 'INFO', 'WARNING', 'ERROR')[m['severity']]}] {m['path']}: {m['error']}"
        for m in report["messages"]
        if m["severity"] >= 2
    ]
    findings += [f"{label}: {error}" for error in report.get("errors") or []]
    return findings


def command_deps(args: argparse.Namespace) -> None:
    chart = Path(args.chart)
    if args.check_only:
        check_dependencies(chart)
    else:
        build_dependencies(chart)
    print(f"subcharts of {chart.name}: ok")


def command_lint(_args: argparse.Namespace) -> None:
    findings: list[str] = []
    for chart in (*SUBCHARTS, APP_CHART):
        findings += lint(chart, None, f"{chart.name} (default values)")
    for values_file in (
        *sorted((APP_CHART / "ci").glob("*.yaml")),
        ROOT / "k8s" / "kind-values.yaml",
    ):
        label = f"quintet ({values_file.relative_to(ROOT)})"
        findings += lint(APP_CHART, load_values(values_file), label)
    if findings:
        raise CheckFailed("helm lint --strict:\n  " + "\n  ".join(findings))
    print(
        "helm lint --strict: ok (postgres, redis, quintet with default, ci/*.yaml and kind values)"
    )


def command_render(args: argparse.Namespace) -> None:
    values = load_values(Path(args.values) if args.values else None)
    documents = render(Path(args.chart), values)
    text = yaml.safe_dump_all(documents, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text)
        print(f"rendered {len(documents)} manifests into {args.output}")
    else:
        sys.stdout.write(text)


def command_batch(_args: argparse.Namespace) -> None:
    """Many renders in one process, for the pytest suite: [{chart?, values?, values_file?}]."""
    results = []
    for case in json.load(sys.stdin):
        if "scenario" in case or "scenario_releases" in case:
            # Every release of a chart_checks scenario (or of the given list): one manifest list.
            releases = case.get("scenario_releases") or scenarios()[case["scenario"]]
            try:
                manifests = [d for c in releases for d in render_case(c)]
                results.append({"ok": True, "manifests": manifests})
            except (helm.HelmError, CheckFailed) as exc:
                results.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        chart = ROOT / case.get("chart", "helm/quintet")
        values = case.get("values")
        if case.get("values_file"):
            values = {**(load_values(ROOT / case["values_file"]) or {}), **(values or {})}
        release, namespace = case.get("release", RELEASE), case.get("namespace", NAMESPACE)
        upgrade = bool(case.get("upgrade"))
        try:
            manifests = render(chart, values, release, namespace, upgrade)
            results.append({"ok": True, "manifests": manifests})
        except (helm.HelmError, CheckFailed) as exc:
            results.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    json.dump(results, sys.stdout)


def render_case(case: dict[str, Any]) -> list[dict[str, Any]]:
    values = case.get("values")
    if case.get("values_file"):
        values = {**(load_values(ROOT / case["values_file"]) or {}), **(values or {})}
    return render(
        ROOT / case.get("chart", "helm/quintet"),
        values,
        case.get("release", RELEASE),
        case.get("namespace", NAMESPACE),
        bool(case.get("upgrade")),
    )


SKAFFOLD_IMAGE = {
    "{{.IMAGE_REPO_quintet}}": "ghcr.io/quintet/quintet",
    "{{.IMAGE_TAG_quintet}}": "1a2b3c4-dirty",
    "{{.IMAGE_DIGEST_quintet}}": "sha256:" + "0123456789abcdef" * 4,
}


def skaffold_values() -> dict[str, Any]:
    """The values skaffold.yaml hands helm (setValueTemplates), with an image reference the way
    skaffold fills it in: a tag and a sha256 digest."""
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    release = config["deploy"]["helm"]["releases"][0]
    values: dict[str, Any] = {}
    for dotted, template in (release.get("setValueTemplates") or {}).items():
        for placeholder, value in SKAFFOLD_IMAGE.items():
            template = template.replace(placeholder, value)
        *parents, leaf = dotted.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = template
    return values


def scenarios() -> dict[str, list[dict[str, Any]]]:
    return {**chart_checks.SCENARIOS, "skaffold": [{"values": skaffold_values()}]}


def command_check(args: argparse.Namespace) -> None:
    """Render every scenario of chart_checks.SCENARIOS and check it as a cluster would."""
    routes = json.loads(Path(args.routes).read_text()) if args.routes else None
    failures = []
    for name, releases in scenarios().items():
        try:
            manifests = [doc for case in releases for doc in render_case(case)]
        except (helm.HelmError, CheckFailed) as exc:
            print(f"{name}: does not render")
            failures.append(f"{name}: does not render: {type(exc).__name__}: {exc}")
            continue
        problems = chart_checks.check(manifests, routes)
        print(f"{name}: {len(manifests)} manifests, {len(problems)} problems")
        failures += [f"{name}: {problem}" for problem in problems]
    if routes is None:
        print("(no --routes: probe paths were not compared with the app's routes)")
    if failures:
        raise CheckFailed("behavioural checks:\n  " + "\n  ".join(failures))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    deps = commands.add_parser("deps", help="vendor the file:// subcharts into charts/")
    deps.add_argument("--chart", default=str(APP_CHART))
    deps.add_argument("--check-only", action="store_true", help="only fail when one is missing")
    deps.set_defaults(run=command_deps)
    commands.add_parser("lint", help="strict lint of every chart").set_defaults(run=command_lint)
    rend = commands.add_parser("render", help="schema check + render to one YAML stream")
    rend.add_argument("--chart", default=str(APP_CHART))
    rend.add_argument("-f", "--values")
    rend.add_argument("-o", "--output")
    rend.set_defaults(run=command_render)
    commands.add_parser("batch", help="JSON cases on stdin").set_defaults(run=command_batch)
    checks = commands.add_parser("check", help="what a cluster would enforce, every scenario")
    checks.add_argument("--routes", help="JSON of the app's routes (.ci/chart_checks.py routes)")
    checks.set_defaults(run=command_check)
    args = parser.parse_args()
    try:
        args.run(args)
    except (CheckFailed, helm.HelmError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
