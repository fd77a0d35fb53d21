"""The knowledge-base console in Debian's chromium: every view driven as a user would, at a phone's and
a desktop's width, light and dark, against a served home with two tenants."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from server_support import add_key, running_server, server_settings
from synthetic_beir import synthetic_beir

pytestmark = pytest.mark.integration

REFUSAL_ROWS = Path(__file__).resolve().parents[1] / "evals" / "data" / "answer_or_refuse_en.jsonl"

from browser_support import chromium, sync_api  # skips the module without chromium

expect = sync_api.expect

# nothing on the page reaches past the window's right edge (what makes a page scroll sideways)
LAYOUT = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  overflowing: [...document.querySelectorAll('main *, header *, nav *')].filter((e) => {
    const box = e.getBoundingClientRect();
    return box.width && box.right > innerWidth + 0.5;
  }).map((e) => e.id || e.className || e.tagName),
  background: getComputedStyle(document.body).backgroundColor,
})"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("console-home")
    files = tmp_path_factory.mktemp("console-files")
    settings = server_settings(home)
    keys = {"a": add_key(settings, "tenant-a"), "b": add_key(settings, "tenant-b")}
    (files / "lighthouse.md").write_text("# Lighthouse\n\nThe lighthouse keeper rings the fog bell at dusk.\n")
    (files / "bakery.md").write_text("# Bakery\n\nThe bakery sells rye bread and almond croissants.\n")
    (files / "notes.xyz").write_text("not a supported file")
    (files / "prices.csv").write_text("item,price\ntea,3\ncoffee,4\n")
    from test_ocr import encoded, page

    (files / "keys.png").write_bytes(encoded(page(["The spare keys hang in the red cabinet."], title="Keys",
                                                  size=(700, 300))))
    beir = synthetic_beir(files / "tiny-beir")
    with running_server(settings) as url:
        yield {"url": url, "keys": keys, "files": files, "beir": beir}


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def console(browser, served, key: str, width: int, scheme: str = "light"):
    context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
    context.add_init_script(f"localStorage.setItem('sieve.key', {key!r})")
    page = context.new_page()
    page.goto(f"{served['url']}/console")
    return context, page


def view(page, name: str) -> None:
    """Opens a view from the keyboard: its link focused, then Enter."""
    page.focus(f"#views a[data-view='{name}']")
    page.keyboard.press("Enter")
    expect(page.locator(f"#view-{name}")).to_be_visible()


def fits(page, width: int) -> dict:
    layout = page.evaluate(LAYOUT)
    assert layout["scrollWidth"] <= width and not layout["overflowing"], layout
    return layout


def luminance(css_rgb: str) -> float:
    red, green, blue = (int(v) for v in css_rgb.removeprefix("rgb(").rstrip(")").split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize(("width", "scheme"), [(390, "light"), (1280, "dark")])
def test_every_console_view_works_at_a_phone_and_a_desktop_width(browser, served, tmp_path, width, scheme):
    kb = f"console-{width}"
    files = served["files"]
    context, page = console(browser, served, served["keys"]["a"], width, scheme)
    api = httpx.Client(base_url=served["url"], headers={"Authorization": f"Bearer {served['keys']['a']}"}, timeout=60)
    assert (luminance(fits(page, width)["background"]) < 0.5) == (scheme == "dark")

    # knowledge bases: create one
    expect(page.locator("#view-kbs")).to_be_visible()
    page.fill("#new-kb-name", kb)
    page.keyboard.press("Enter")
    row = page.locator(f"#kb-table tr[data-kb='{kb}']")
    expect(row).to_be_visible()
    expect(page.locator("#kb")).to_have_value(kb)

    # upload: two files become ready, an unsupported one fails with its reason and can be sent again
    view(page, "upload")
    page.set_input_files("#file-input", [files / "lighthouse.md", files / "bakery.md", files / "notes.xyz"])
    for name in ("lighthouse.md", "bakery.md"):
        expect(page.locator(f"#upload-list li[data-file='{name}'] .status")).to_have_text("ready", timeout=120_000)
    failed = page.locator("#upload-list li[data-file='notes.xyz']")
    expect(failed.locator(".status")).to_have_text("failed")
    expect(failed.locator(".reason")).to_contain_text("unsupported file type .xyz")
    failed.locator("button.reupload").click()
    expect(page.locator("#upload-list li[data-file='notes.xyz'] .reason")).to_contain_text("unsupported")
    # dropped on the drop zone (from the keyboard, Enter opens the file chooser instead)
    drop = page.locator("#drop")
    transfer = page.evaluate_handle("""([name, text]) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([text], name, {type: 'text/csv'}));
        return transfer;
    }""", ["prices.csv", (files / "prices.csv").read_text()])
    drop.dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.locator("#upload-list li[data-file='prices.csv'] .status")).to_have_text("ready", timeout=120_000)
    with page.expect_file_chooser() as chooser:
        drop.focus()
        page.keyboard.press("Enter")
    chooser.value.set_files(files / "keys.png")  # a scan: the job counts the pages OCR read
    expect(page.locator("#upload-list li[data-file='keys.png'] .status")).to_have_text("ready · 1 page read",
                                                                                      timeout=120_000)
    fits(page, width)

    # documents: the ready ones and the failed upload; the chunk viewer shows the text and where it sits (a
    # table's header, a scan's page); one is deleted after the question
    view(page, "documents")
    expect(page.locator("#doc-table tr.uploading[data-doc='notes.xyz'] .doc-status")).to_have_text("failed")
    docs = page.locator("#doc-table tbody tr:not(.uploading)")
    expect(docs).to_have_count(4)
    page.locator("#doc-table tr[data-doc='prices.csv'] button.show-chunks").click()
    expect(page.locator("#chunk-list li .table-header").first).to_have_text("table header: item | price")
    page.locator("#doc-table tr[data-doc='keys.png'] button.show-chunks").click()
    expect(page.locator("#chunk-list li .where").first).to_contain_text("page 1")
    bakery = page.locator("#doc-table tr[data-doc='bakery.md']")
    bakery.locator("button.show-chunks").click()
    expect(page.locator("#chunk-list li").first).to_contain_text("almond croissants")
    expect(page.locator("#chunk-list li .where").first).to_contain_text("#1 of 1")
    bakery.locator("button.delete-doc").click()
    expect(page.locator("#confirm-text")).to_have_text("Delete document 'bakery.md'?")
    page.keyboard.press("Escape")  # cancelled: nothing deleted
    expect(docs).to_have_count(4)
    bakery.locator("button.delete-doc").click()
    page.click("#confirm-ok")
    expect(docs).to_have_count(3)
    expect(bakery).to_have_count(0)
    fits(page, width)
    view(page, "kbs")
    expect(row.locator(".docs")).to_have_text("3")
    assert int(row.locator(".chunks").text_content()) >= 1

    # hit testing: ranks and raw scores per path, the fused order, time per stage
    view(page, "hits")
    page.fill("#hit-query", "who rings the fog bell")
    page.click("#hit-form button[type=submit]")
    first = page.locator("#hit-table tbody tr").first
    expect(first.locator(".file")).to_have_text("lighthouse.md")
    assert first.locator("td[data-path='bm25']").text_content().startswith("1 (")
    assert first.locator("td[data-path='dense']").text_content().startswith("1 (")
    expect(first.locator(".fused-rank")).to_have_text("1")
    expect(page.locator("#hit-summary .stage[data-stage='total']")).to_be_visible()
    expect(page.locator("#hit-used")).to_contain_text("paths: bm25, dense")
    fits(page, width)
    page.screenshot(path=str(tmp_path / f"console-hits-{width}-{scheme}.png"), full_page=True)

    # the profile: a change is saved and the next hit test uses it; an invalid field shows its error there
    view(page, "profile")
    page.uncheck("#profile-fields input[name=paths][value=dense]")
    page.select_option("#field-reranker", "embedding")
    page.click("#profile-form button[type=submit]")
    expect(page.locator("#profile-saved")).to_contain_text("Saved")
    page.fill("#field-rrf_k", "0")
    page.click("#profile-form button[type=submit]")
    expect(page.locator("#error-rrf_k")).to_contain_text("greater than or equal to 1")
    expect(page.locator("#field-rrf_k")).to_have_attribute("aria-invalid", "true")
    assert api.get(f"/v1/knowledge-bases/{kb}/profile").json()["rrf_k"] == 60  # nothing invalid stored
    fits(page, width)
    page.screenshot(path=str(tmp_path / f"console-profile-{width}-{scheme}.png"), full_page=True)
    view(page, "hits")
    expect(page.locator("#hit-paths input[value=dense]")).not_to_be_checked()
    page.click("#hit-form button[type=submit]")
    expect(page.locator("#hit-used")).to_contain_text("paths: bm25 · reranker: embedding (reranked)")
    expect(page.locator("#hit-table tbody td[data-path='dense']")).to_have_count(0)
    assert 0 < float(page.locator("#hit-table tbody tr").first.locator(".rerank").text_content()) <= 1
    # a path toggled on for one query only: the stored profile keeps its own
    page.check("#hit-paths input[value=dense]")
    page.click("#hit-form button[type=submit]")
    expect(page.locator("#hit-used")).to_contain_text("paths: bm25, dense")
    assert api.get(f"/v1/knowledge-bases/{kb}/profile").json()["paths"] == ["bm25"]
    api.put(f"/v1/knowledge-bases/{kb}/profile", json={"paths": ["bm25", "dense"]}).raise_for_status()

    # evaluation: a tiny BEIR set (its corpus ingested along) gives metrics per path as a chart, kept to compare
    view(page, "evaluation")
    beir = served["beir"]
    page.set_input_files("#eval-files", [beir / "queries.jsonl", beir / "corpus.jsonl", beir / "qrels" / "train.tsv"])
    expect(page.locator("#eval-split")).to_have_value("train.tsv")
    page.click("#eval-run")
    metrics = page.locator("#eval-metrics tbody tr")
    expect(metrics).to_have_count(3, timeout=180_000)
    labels = page.evaluate("Chart.getChart('eval-chart').data.datasets.map((d) => d.label)")
    assert labels == ["bm25", "dense", "fused"]
    fused_ndcg = float(page.locator("#eval-metrics tr[data-run='fused'] td[data-metric='ndcg@10']").text_content())
    assert fused_ndcg > 0.5  # each query names its topic's one document
    assert page.evaluate("document.getElementById('eval-chart').width") > 0  # drawn
    expect(page.locator("#eval-table tbody tr")).to_have_count(1)
    assert page.evaluate("Chart.getChart('compare-chart').data.datasets.length") == 3
    fits(page, width)
    page.screenshot(path=str(tmp_path / f"console-{width}-{scheme}.png"), full_page=True)

    # answer-or-refuse rows: accuracy per decision rule as a chart, the confusion matrix of each
    rows = tmp_path / "answer_or_refuse.jsonl"
    rows.write_text("\n".join(REFUSAL_ROWS.read_text(encoding="utf-8").splitlines()[:24]), encoding="utf-8")
    page.check("input[name=eval-kind][value=refusal]")
    page.set_input_files("#eval-files", rows)
    page.click("#eval-run")
    expect(page.locator("#eval-result table.confusion")).to_have_count(3, timeout=120_000)
    expect(page.locator("#eval-result table.confusion").first).to_contain_text("answerable")
    assert page.evaluate("Chart.getChart('eval-chart').data.labels.length") == 3
    expect(page.locator("#eval-table tbody tr")).to_have_count(2)
    fits(page, width)

    # deleting the knowledge base asks the CLI's question first
    view(page, "kbs")
    row.locator("button.delete-kb").click()
    expect(page.locator("#confirm-text")).to_have_text(f"Delete knowledge base '{kb}' and all its documents?")
    page.click("#confirm-ok")
    expect(row).to_have_count(0)
    assert api.get(f"/v1/knowledge-bases/{kb}").status_code == 404
    api.close()
    context.close()


def test_another_tenants_key_sees_none_of_it_in_the_console(browser, served):
    api = httpx.Client(base_url=served["url"], headers={"Authorization": f"Bearer {served['keys']['a']}"}, timeout=60)
    api.post("/v1/knowledge-bases", json={"name": "a-private"}).raise_for_status()
    context, page = console(browser, served, served["keys"]["b"], 1280)
    expect(page.locator("#kb-table tbody tr")).to_have_count(0)
    expect(page.locator("#kb option")).to_have_count(0)
    page.goto(f"{served['url']}/console?kb=a-private#documents")
    expect(page.locator("#notice")).to_contain_text("Create or choose a knowledge base first")
    # asking for A's KB by name answers as if it did not exist
    status = page.evaluate("""async () => (await fetch('/v1/knowledge-bases/a-private/evaluations',
        {headers: {Authorization: 'Bearer ' + localStorage.getItem('sieve.key')}})).status""")
    assert status == 404
    context.close()
    api.close()
