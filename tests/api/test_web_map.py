"""The engineers' map at ``/``: served without a CDN, and (in headless Chromium, when installed)
it draws the coloured segments and opens a segment's panel with its masked frames."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.api.conftest import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(
    os.environ.get("PAVEMENT_TEST_ARTIFACTS", Path(__file__).parents[2] / "out" / "test-artifacts")
)
#: IRI colour steps of map.js (MLIT I / II / III) and the grey of "not measured".
IRI_COLORS = {"#3cb371", "#ffa500", "#e02020", "#9e9e9e"}


def test_page_and_leaflet_are_served_locally(service):
    page = service.client.get("/")
    assert page.status_code == 200
    assert "路面点検 区間マップ" in page.text
    assert '"tile_url": ""' in page.text  # tests fetch no tiles
    assert "unpkg" not in page.text and "cdn" not in page.text.lower()
    for path in ("/static/leaflet/leaflet.js", "/static/leaflet/leaflet.css", "/static/app/map.js"):
        assert service.client.get(path).status_code == 200, path
    assert "/" not in service.client.get("/api/v1/openapi.json").json()["paths"]


def test_default_tiles_are_the_gsi_standard_map(tmp_path):
    from api.settings import GSI_TILES, Settings

    assert Settings(data_dir=tmp_path).tile_url == GSI_TILES
    assert "cyberjapandata.gsi.go.jp/xyz/std/" in GSI_TILES


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium (see .ci/run)")
def test_browser_shows_segments_and_a_segment_panel(e2e):
    sync_api = pytest.importorskip("playwright.sync_api")
    engineer = e2e.service.tokens["engineer"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    with running_server(e2e.service.client.app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith(base) or r.url.startswith("blob:") else outside.append(r.url)
                ),
            )
            page.goto(base + "/")
            page.fill("#token", engineer)
            page.dispatch_event("#token", "change")
            page.select_option("#color_by", "iri_mm_per_m")
            page.wait_for_selector("path[data-segment]")
            paths = page.locator("path[data-segment]")
            assert paths.count() == 3
            strokes = {paths.nth(i).get_attribute("stroke") for i in range(3)}
            assert strokes <= IRI_COLORS
            assert strokes != {"#9e9e9e"}, "IRI is measured on this run: at least one coloured segment"
            assert page.locator("#status").inner_text() == "3 区間"

            with_frames = _segment_with_frames(e2e)
            # a click event on the line itself (the box's centre of a bent line may lie off it)
            page.locator(f'path[data-segment="{with_frames}"]').dispatch_event("click")
            page.wait_for_selector("#panel:not([hidden])")
            assert page.locator("#panel_title").inner_text().startswith("路線 3 下り")
            assert "IRI (mm/m)" in page.locator("#figures").inner_text()
            assert page.locator("#history tr").count() == 2  # header + this run
            page.wait_for_selector('#frames img[src^="blob:"]')
            natural_width = page.locator("#frames img").first.evaluate("img => img.naturalWidth")
            assert natural_width > 0
            page.screenshot(path=str(ARTIFACTS / "web_map.png"))

            page.fill("#repair_note", "ポットホール補修")
            page.click("#repair_mark")
            page.wait_for_function("document.getElementById('repair_state').textContent.startsWith('登録済')")
            marked = page.locator(f'path[data-segment="{with_frames}"]')
            page.wait_for_function(
                f"document.querySelector('path[data-segment=\"{with_frames}\"]').getAttribute('stroke-dasharray')"
            )
            assert marked.get_attribute("stroke-width") == "10"
            page.click("#repair_unmark")
            page.wait_for_function("document.getElementById('repair_state').textContent === '未登録'")
        finally:
            browser.close()
    assert outside == []
    assert (ARTIFACTS / "web_map.png").stat().st_size > 10_000


def _segment_with_frames(e2e) -> str:
    from api.models import FrameRow, SegmentRow

    with e2e.service.store.session() as session:
        row = session.query(SegmentRow).join(FrameRow, FrameRow.segment_id == SegmentRow.id).first()
        return row.segment_key


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium (see .ci/run)")
def test_browser_draws_a_big_network_on_a_canvas(make_service):
    """Over 2,000 segments the map asks for the lean view and draws on one canvas (no SVG paths)."""
    from tests.api.test_segments import _feature, _store_run

    sync_api = pytest.importorskip("playwright.sync_api")
    service = make_service()
    _store_run(service, [_feature(i, route_no=str(r)) for r in range(1, 8) for i in range(300)])
    requests: list[str] = []
    errors: list[str] = []
    with running_server(service.client.app) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            page.fill("#token", service.tokens["engineer"])
            page.dispatch_event("#token", "change")
            page.click("#load")
            page.wait_for_function("document.getElementById('status').textContent === '2100 区間'")
            assert page.locator("path[data-segment]").count() == 0
            assert page.locator(".leaflet-overlay-pane canvas").count() == 1
        finally:
            browser.close()
    assert errors == []
    assert any("/api/v1/segments?view=map" in url for url in requests)
