"""The studio's reports page: evaluation report folders and coverage plots of the workspace are listed, a report's
key metrics are shown in the studio's page, its own report.html is served under the extra sandboxing policy, a
coverage PNG is served, and paths outside the workspace (or files that are neither) are refused with one line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from facelab.evaluate.metrics import METRICS_VERSION
from facelab.evaluate.page import render_html
from facelab.studio.app import PAGES, create_app
from facelab.studio.reports import REPORT_HTML_CSP, find_reports


def write_report(folder: Path, frames: int = 6) -> dict[str, Any]:
    """A small report folder as ``facelab evaluate`` writes it: report.json, and report.html drawn by evaluate's own
    page writer (``render_html``; its plots from the per-frame rows)."""
    metric = {"value": 0.61, "n": frames, "version": METRICS_VERSION}
    rows = [
        {"frame": i, "id_dist_src": 0.5 + 0.01 * i, "id_dist_dst": 0.7, "yaw_err": 1.0, "pitch_err": 0.5,
         "roll_err": 0.2, "expression_err": 0.03, "gaze_err": math.nan}
        for i in range(frames)
    ]  # fmt: skip
    report = {
        "version": METRICS_VERSION,
        "inputs": {"src": "src_faces", "dst": "dst.mp4", "swapped": "swapped.mp4"},
        "frames": {"evaluated": frames, "skipped": [7], "src_faces": 12},
        "metrics": {
            "identity_transfer": metric,
            "id_dist_src": {**metric, "value": 0.52},
            "pose_err_l2": {**metric, "value": 1.25},
            "pose_err_yaw": {**metric, "value": 1.0},
            "gaze_err": {**metric, "value": None},
        },
        "bins": {
            "frontal": {"identity_transfer": {**metric, "value": 0.66}},
            "profile": {"identity_transfer": {"value": None, "n": 1, "reason": "1 frames: too few"}},
        },
        "per_frame": rows,
        "notes": ["FID/KID skipped (with_fid=False)", "a <b>note</b> with markup"],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    if frames not in _HTML:  # drawn once per session: matplotlib is the slow part
        _HTML[frames] = render_html(report, [])
    (folder / "report.html").write_text(_HTML[frames])
    return report


_HTML: dict[int, str] = {}


def write_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((20, 30, 3), 128, np.uint8))
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    write_report(w / "runs" / "eval1")
    write_png(w / "src.coverage.png")
    write_report(tmp_path / "outside_report")  # outside the workspace: never listed nor served
    write_png(tmp_path / "outside.coverage.png")
    (w / "runs" / "link_out").symlink_to(tmp_path / "outside_report")
    (w / "out.coverage.png").symlink_to(tmp_path / "outside.coverage.png")
    write_report(w / ".hidden" / "eval")  # hidden folder: not listed
    return w


def client(ws: Path) -> TestClient:
    return TestClient(create_app(ws), base_url="http://127.0.0.1")


def one_line_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    msg = r.json()["error"]
    assert msg and "\n" not in msg
    return msg


def test_registered_with_nav(ws: Path) -> None:
    assert any(p.__name__ == "facelab.studio.reports" for p in PAGES)
    page = client(ws).get("/").text
    assert 'href="/reports"' in page


def test_lists_reports_and_coverage(ws: Path) -> None:
    entries = find_reports(ws.resolve())
    assert {(e.kind, e.rel) for e in entries} == {("report", "runs/eval1"), ("coverage", "src.coverage.png")}
    r = client(ws).get("/reports")
    assert r.status_code == 200
    assert 'href="/reports/view/runs/eval1"' in r.text
    assert 'href="/reports/html/runs/eval1"' in r.text
    assert 'href="/reports/view/src.coverage.png"' in r.text
    assert "outside" not in r.text and "link_out" not in r.text and ".hidden" not in r.text


def test_empty_workspace_says_what_it_looks_for(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = client(tmp_path / "empty").get("/reports")
    assert r.status_code == 200
    assert "No evaluation reports" in r.text and "No coverage plots" in r.text


def test_report_view_shows_key_metrics(ws: Path) -> None:
    r = client(ws).get("/reports/view/runs/eval1")
    assert r.status_code == 200
    metrics = re.search(r'data-testid="report-metrics".*?</table>', r.text, re.S).group(0)
    assert "identity transfer (0 dst blurred .. 1 src)" in metrics and "0.61" in metrics
    assert "pose error L2 (deg)" in metrics and "1.25" in metrics
    assert "gaze error (deg)" in metrics and "n/a" in metrics
    bins = re.search(r'data-testid="report-bins".*?</table>', r.text, re.S).group(0)
    assert "frontal" in bins and "0.66" in bins
    assert "6 frames evaluated" in r.text and "1 skipped" in r.text
    assert "a &lt;b&gt;note&lt;/b&gt; with markup" in r.text  # escaped, as everything from the file
    assert 'href="/reports/html/runs/eval1"' in r.text


def test_report_html_is_served_sandboxed(ws: Path) -> None:
    r = client(ws).get("/reports/html/runs/eval1")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Face-swap evaluation</h1>" in r.text and "data:image/png;base64," in r.text
    policies = r.headers.get_list("content-security-policy")
    assert len(policies) == 2  # the studio's own, and the report's stricter one: a browser enforces both
    assert REPORT_HTML_CSP in policies and any("frame-ancestors 'none'" in p for p in policies)
    assert r.headers["x-frame-options"] == "DENY"
    # an ordinary page keeps one policy, the studio's
    assert len(client(ws).get("/reports").headers.get_list("content-security-policy")) == 1


def test_coverage_served(ws: Path) -> None:
    c = client(ws)
    page = c.get("/reports/view/src.coverage.png")
    assert page.status_code == 200 and 'src="/reports/image/src.coverage.png"' in page.text
    r = c.get("/reports/image/src.coverage.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (ws / "src.coverage.png").read_bytes()


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/reports/view/..%2Foutside_report", 403),
        ("/reports/html/..%2Foutside_report", 403),
        ("/reports/view/runs/link_out", 403),  # a symlink out of the workspace
        ("/reports/html/runs/link_out", 403),
        ("/reports/image/out.coverage.png", 403),
        ("/reports/image/..%2Foutside.coverage.png", 403),
        ("/reports/html/.hidden/eval", 403),
        ("/reports/image/runs/eval1/report.json", 404),  # only coverage plots are served as images
        ("/reports/html/runs", 404),  # not a report folder
        ("/reports/view/runs", 404),
        ("/reports/view/nothing", 404),
    ],
)
def test_refused(ws: Path, url: str, status: int) -> None:
    one_line_error(client(ws).get(url), status)


def test_broken_report_is_one_line(ws: Path) -> None:
    (ws / "bad").mkdir()
    (ws / "bad" / "report.json").write_text("{not json")
    (ws / "nometrics").mkdir()
    (ws / "nometrics" / "report.json").write_text("[1, 2]")
    c = client(ws)
    assert "report.json: not a readable report" in one_line_error(c.get("/reports/view/bad"), 422)
    assert "no 'metrics' object" in one_line_error(c.get("/reports/view/nometrics"), 422)
    assert c.get("/reports").status_code == 200  # the list still works
