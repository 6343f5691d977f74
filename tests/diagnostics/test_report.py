"""The HTML report: valid, self-contained, escaping untrusted text; rendered by Chromium."""

import html.parser
import shutil
import subprocess

import numpy as np
import pytest

from rnnlab.diagnostics.plots import plot_gradient_flow
from rnnlab.diagnostics.report import Report

HOSTILE = 'say "hi" <script>document.title="pwned"</script> & <img src=x onerror=alert(1)>'


class Checker(html.parser.HTMLParser):
    """Collects tags and checks that every opened element is closed in order."""
    VOID = {"meta", "img", "br", "hr", "input", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def make_report(tmp_path):
    rep = Report("Report <b>title</b>")
    rep.heading("Results & more")
    rep.table(["cell", "MSE"], [["lstm", 0.004], ["<i>rnn</i>", 0.17]])
    rep.image(plot_gradient_flow({"rnn": 0.8 ** np.arange(30)[::-1], "lstm": np.ones(30)}), "gradient flow")
    rep.coloured_text(HOSTILE, np.linspace(-1, 1, len(HOSTILE)), "activations over hostile text")
    return rep.save(tmp_path / "report.html")


def test_report_is_valid_html_and_escapes_everything(tmp_path):
    page = make_report(tmp_path).read_text()
    c = Checker()
    c.feed(page)
    c.close()
    assert c.stack == []
    tags = [t for t, _ in c.tags]
    assert "script" not in tags and "b" not in tags and "i" not in tags
    assert tags.count("img") == 1                          # only our own image
    img = dict(c.tags)["img"]
    assert img["src"].startswith("data:image/png;base64,")  # self-contained
    assert "onerror" not in img
    assert HOSTILE in "".join(c.text)                      # shown as text, character by character
    assert "<script>" not in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_chromium_renders_the_report(tmp_path):
    path = make_report(tmp_path)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(["chromium", *flags, "--dump-dom", path.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    assert "<title>Report &lt;b&gt;title&lt;/b&gt;</title>" in dom    # no script ran to set "pwned"
    assert "pwned</title>" not in dom
    assert dom.count('class="results"') == 1 and "data:image/png;base64," in dom
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", "--window-size=1000,1400", path.as_uri()],
                   capture_output=True, timeout=120)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000     # a real page, not blank
