"""Generated pages' HTML lifted out of Markdown's way (generator/lift.py) is what Markdown would have made.

Python-Markdown is the judge: every document here is converted once as it is and once lifted, converted
and restored, and the two must be the same DOM (tests/generator/htmldom.py). Documents come from fragments
chosen to sit on every edge of Markdown's raw-HTML rule (unclosed and stray tags, text after an element,
scripts with content, comments, fences, indented code, inline tags), mixed at random by hypothesis.
A mkdocs hook that changes a placeholder stops ``receipts build`` with one message, ``--out`` untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import markdown
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.lift import BLOCK_TAGS, LiftError, lift, new_token, restore
from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root
from tests.generator.htmldom import first_difference

ROOT = Path(__file__).resolve().parents[2]
TOKEN = new_token()

FRAGMENTS = [
    '<div class="a"><p>x &lt;b&gt; &amp; y</p></div>',
    "<div>\n<div>in</div>\n</div>",
    "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>",
    "<details><summary>s</summary><dl><dt>k</dt><dd>v</dd></dl></details>",
    "<p>para <em>x</em> <code>y</code></p>",
    '<script src="a.js" defer></script>',
    "<section>\n<div>\n</section>",
    "<div>open",
    "</div>",
    "<span>inline</span> text",
    "text with *emphasis* and `code`",
    "## Heading",
    "- list item\n- another",
    "<!-- comment -->",
    '<script>var x = "<div>";</script>',
    "    <div>indented</div>",
    "```\n<div>fenced</div>\n```",
    "<hr>",
    "<div>a</div> tail *text*",
    "<div>a</div><div>b</div>",
    "<p>a<p>b</p>",
    "<ul><li>x</li></ul>",
    "<div><style>p {}</style></div>",
    "<div>x</div>\n    <div>y</div>",
    "<div>x</div>\n<p>y</p>",
    '<nav class="n"><a href="../">up</a> \u203a here</nav>',
    "<figure><img src=c.svg alt=chart><figcaption>c</figcaption></figure>",
    "<div><span>unclosed inline</div>",
    "<div>two\n\nparagraphs</div>",
    "<DIV>upper</DIV>",
    "<divx>not a div</divx>",
    "<div\nclass=split>attribute on the next line</div>",
    "<div>tab\there</div>",
    "<div>carriage\r\nreturn\rhere</div>",
    "<div>\x02control\x03 characters Markdown removes</div>",
    "<div>\n  \n</div>",
]
SEPARATORS = ["\n\n", "\n", "\n\n\n", " ", "\n   ", "\n \n", "\n    ", "\t", "\n\t", "  ", "\n\n    ", ""]


def _convert(text: str) -> str:
    return markdown.Markdown(extensions=["toc", "tables", "fenced_code"]).convert(text)


def _lifted(text: str) -> tuple[str, list[str]]:
    skeleton, chunks = lift(text, TOKEN)
    return restore(_convert(skeleton), TOKEN, chunks), chunks


def test_lift_tags_are_block_level_to_markdown() -> None:
    assert set(markdown.Markdown().block_level_elements) >= BLOCK_TAGS


@pytest.mark.parametrize("fragment", FRAGMENTS)
def test_each_fragment_alone_and_between_others(fragment: str) -> None:
    for text in (fragment, f"# T\n\n<div>before</div>\n\n{fragment}\n\n<div>after</div>\n\ntext"):
        out, _ = _lifted(text)
        assert out == _convert(text), text  # byte for byte


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(SEPARATORS)), min_size=1, max_size=8))
def test_any_mix_of_fragments_is_what_markdown_makes(parts: list[tuple[str, str]]) -> None:
    text = "".join(fragment + separator for fragment, separator in parts)
    out, _ = _lifted(text)
    assert out == _convert(text), first_difference(_convert(text), out)  # byte for byte


def test_a_card_page_is_lifted_block_by_block_and_markdown_text_stays() -> None:
    text = (
        '<section class="rc-label">\n<h1>m</h1>\n<div class="g">\n<p>x</p>\n</div>\n</section>\n'
        '<script src="v.js" defer></script>\n\n## Model details\n\n<div class="rc-block"><table><tr><td>a'
        "</td></tr></table>\n<details><summary>raw</summary><dl><dt>k</dt><dd>v</dd></dl></details></div>\n\n"
        "1 model tagged `x`, see [the catalog](../).\n\n<div>last</div>\n"
    )
    skeleton, chunks = lift(text, TOKEN)
    assert len(chunks) == 3
    assert "## Model details" in skeleton
    assert "[the catalog](../)" in skeleton
    assert "<" not in skeleton  # every tag was lifted; the Markdown text is left to Markdown
    assert restore(_convert(skeleton), TOKEN, chunks) == _convert(text)


@pytest.mark.parametrize(
    "stops",
    [
        "<div>open\n\n<div>x</div>",  # a raw block Markdown runs past the blank line
        "text <span>open\n\n<div>x</div>",  # Markdown text opening a tag
        '<script>var a = "</div>";</script>\n\n<div>x</div>',  # a script's content is not tags
        "<!-- a comment\n\n<div>x</div> -->",
        "```\n<div>x</div>\n```",
    ],
)
def test_whatever_is_uncertain_is_left_to_markdown_from_there_on(stops: str) -> None:
    skeleton, chunks = lift(stops + "\n\n<div>after</div>\n", TOKEN)
    assert chunks == []
    assert "<div>after</div>" in skeleton
    out, _ = _lifted(stops + "\n\n<div>after</div>\n")
    assert out == _convert(stops + "\n\n<div>after</div>\n")


def test_a_fence_in_card_text_stays_text_in_its_element() -> None:
    """Untrusted text keeps its line breaks; a fence at a line start is Markdown's, never when lifted."""
    text = '<div class="rc-block"><p>first\n```\nline\n</p><p>second\n```\n</p></div>\n\n## Next\n'
    skeleton, chunks = lift(text, TOKEN)
    assert chunks == [text.split("\n\n")[0] + "\n"]
    out = restore(_convert(skeleton), TOKEN, chunks)
    assert "<pre>" not in out
    assert out.startswith('<div class="rc-block"><p>first\n```')
    assert "<pre>" in _convert(text)  # what Markdown alone makes of it: the HTML around it becomes code


def test_restore_refuses_a_missing_repeated_or_unknown_placeholder() -> None:
    skeleton, chunks = lift("<div>a</div>\n\n<div>b</div>\n", TOKEN)
    html = _convert(skeleton)
    assert (
        restore(html, TOKEN, chunks)
        == "<div>a</div>\n\n<div>b</div>"
        == _convert("<div>a</div>\n\n<div>b</div>")
    )
    with pytest.raises(LiftError, match=r"\[1\] missing or repeated"):
        restore(html.replace(f"{TOKEN}N1E", ""), TOKEN, chunks)
    with pytest.raises(LiftError, match=r"\[0\] missing or repeated"):
        restore(html + f"<p>{TOKEN}N0E</p>", TOKEN, chunks)
    with pytest.raises(LiftError, match="not one this page lifted"):
        restore(html + f"<p>{TOKEN}N7E</p>", TOKEN, chunks)
    assert new_token() != new_token()
    assert new_token().isalnum()


def test_a_hook_that_changes_a_placeholder_stops_the_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin or hook of the publisher's mkdocs config that rewrites a lifted page fails the build."""
    key = generate()
    trust = tmp_path / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    sign_receipt(ROOT / "examples" / "card.yaml", [key], tmp_path / "receipts")
    (tmp_path / "mangle.py").write_text(
        "def on_page_markdown(markdown, **kwargs):\n    return markdown.replace('RCLIFT', 'rclift')\n",
        "utf-8",
    )
    config = tmp_path / "mkdocs.yml"
    site = ROOT / "site"
    config.write_text(
        f"INHERIT: {site / 'mkdocs.yml'}\ndocs_dir: {site / 'pages'}\nhooks: [{tmp_path / 'mangle.py'}]\n",
        "utf-8",
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", "utf-8")
    argv = ["build", str(tmp_path / "receipts"), "--trust-root", str(trust), "--out", str(out)]
    code = main([*argv, "--config-file", str(config), "--force"])
    captured = capsys.readouterr()
    said = " ".join((captured.out + captured.err).split())
    assert code != 0
    assert "placeholder(s) [0" in said, said
    assert "missing or repeated" in said
    assert "a Markdown extension or plugin changed it" in said
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # nothing replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.building-")]  # staging removed
