"""Templates: seed reproduction byte for byte, validation messages, the store, token budgeting."""

from __future__ import annotations

import itertools
import string
from pathlib import Path

import pytest

import qa_core
from qa_core import tokens
from qa_core.answering import prompts
from qa_core.answering.prompts import (
    DEFAULT_TEMPLATE_NAME,
    MESSAGE_OVERHEAD_TOKENS,
    NOT_REPORTED_SENTINEL,
    PRESETS,
    SEED_TEMPLATE_NAME,
    Template,
    competency_questions,
    fit,
    format_context,
    render,
    validate,
)
from qa_core.answering.template_store import TemplateStore
from qa_core.errors import PromptTooLong, TemplateError

DATA = Path(__file__).resolve().parent / "data"
PACKAGE_DATA = Path(qa_core.__file__).resolve().parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"
SEED_PREFIX = "don't try to make up an answer.\n\n"
SEED_SUFFIX = "\n\nQuestion: %INSTRUCTIONS:"
# First words of the 2nd, 3rd and 4th retrieved chunk in seed_example.txt (each chunk ≤ 1000
# characters, as the seed pipeline's splitter made them); the references chunk has blank lines.
CHUNK_STARTS = ("While neural networks", "from underwater video", "A ResNet152 was used")
GOOD = "Passages:\n{context}\n\nQ: {question}"


def _seed_example() -> str:
    return (DATA / "seed_example.txt").read_bytes().decode("utf-8")


def _seed_chunks() -> list[str]:
    example = _seed_example()
    start = example.index(SEED_PREFIX) + len(SEED_PREFIX)
    context = example[start : example.index(SEED_SUFFIX)]
    cuts = [0, *(context.index("\n\n" + s) for s in CHUNK_STARTS), len(context)]
    chunks = [context[a:b].removeprefix("\n\n") for a, b in itertools.pairwise(cuts)]
    assert "\n\n".join(chunks) == context
    return chunks


# --- data files and presets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("copy", "original"),
    [
        (DATA / "seed_prompt_template.txt", PACKAGE_DATA / "seed_prompt_template.txt"),
        *(
            (PACKAGE_DATA / name, SHARED / "data" / "dl-methodology" / name)
            for name in (
                "seed_prompt_template.txt",
                "competency_questions.txt",
                "binary_prompt.txt",
            )
        ),
        (DATA / "seed_example.txt", SHARED / "data" / "dl-methodology" / "seed_example.txt"),
    ],
)
def test_copies_are_byte_exact(copy: Path, original: Path) -> None:
    if not original.exists():
        pytest.skip("../shared is absent")
    assert copy.read_bytes() == original.read_bytes()


@pytest.mark.parametrize("chunked", [True, False])
def test_seed_preset_reproduces_the_published_prompt(chunked: bool) -> None:
    example = _seed_example()
    chunks = _seed_chunks()
    assert [len(c) for c in chunks] == [993, 980, 841, 609]
    contexts = chunks if chunked else ["\n\n".join(chunks)]
    question = (PACKAGE_DATA / "competency_questions.txt").read_bytes().decode().split("\n")[4]
    assert question.endswith("? ") and question == competency_questions(exact=True)[4]
    prompt = render(PRESETS[SEED_TEMPLATE_NAME], question, contexts)
    assert len(prompt) == 4031
    assert prompt.endswith("Helpful Answer:")
    assert prompt == example[:4031]


def test_presets() -> None:
    assert list(PRESETS) == [DEFAULT_TEMPLATE_NAME, SEED_TEMPLATE_NAME]
    seed, evidence = PRESETS[SEED_TEMPLATE_NAME], PRESETS[DEFAULT_TEMPLATE_NAME]
    assert seed.text == (DATA / "seed_prompt_template.txt").read_bytes().decode()
    assert not seed.text.endswith("\n") and not seed.numbered and evidence.numbered
    for phrase in ("ONLY the numbered passages", "under 400 words", "[n]", "double quotes"):
        assert phrase in evidence.text
    assert f"\n{NOT_REPORTED_SENTINEL}\n" in evidence.text
    for template in PRESETS.values():
        template.validate()
        assert len(template.hash) == 12
    rendered = render(evidence, "Q?", ["[1] T — p. 2\nx"])
    assert "{" not in rendered and "Question: Q?" in rendered
    assert "Mind the units." in render(evidence, "Q?", ["x"], instructions="Mind the units.")


def test_competency_questions() -> None:
    display, exact = competency_questions(), competency_questions(exact=True)
    assert len(display) == len(exact) == 28
    assert [i for i, q in enumerate(exact) if q != display[i]] == [0, 4]
    assert all(q == q.strip() and q.endswith("?") for q in display)
    assert "2411.09269" in prompts.CITATION


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((1, "CityNet", 3, 3, "text"), "[1] CityNet — p. 3\ntext"),
        ((2, "CityNet", 3, 4, "text", "Methods"), "[2] CityNet — pp. 3–4 — Methods\ntext"),
        ((3, "", 7, 7, "a\nb"), "[3] — p. 7\na\nb"),
    ],
)
def test_format_context(args: tuple[int, str, int, int, str], expected: str) -> None:
    assert format_context(*args) == expected


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "The template is empty"),
        ("  \n ", "The template is empty"),
        ("Q: {question}", "The template has no {context} placeholder; add it where the retrieved"),
        ("C: {context}", "The template has no {question} placeholder"),
        ("{context}\n{question}\nsee {foo}", "Unknown placeholder {foo} at line 3;"),
        ("{context} {question} { context }", "Unknown placeholder { context } at line 1"),
        ("{context}\nQ: {question\n", "Unbalanced '{' at line 2, column 4"),
        ("{context}\n{ques{question}", "Unbalanced '{' at line 2, column 1"),
        ("{context} {question:}", "write just {question}"),
        ("{context} {question} }", "Unbalanced '}' at line 1, column 22"),
        ("{context} {question} {", "Unbalanced '{' at line 1, column 22"),
        ("{context!r} {question}", "{context!r} at line 1, column 1 uses a conversion"),
        ("{context} {question:>10}", "format spec or attribute access"),
        ("{context} {question.x}", "write just {question}"),
        ("{context} {question[0]}", "write just {question}"),
        ("{context} {question} {0}", "Positional placeholder {0} at line 1, column 22"),
        ("{context} {question} {}", "Positional placeholder {}"),
        ("{context:{question}}", "Nested placeholder in a format spec at line 1, column 1"),
    ],
)
def test_invalid_templates(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as caught:
        validate(text)
    assert fragment in str(caught.value)
    with pytest.raises(TemplateError):
        render(Template("x", text), "q", ["c"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{x}} {context} {question}", "{x} C Q"),
        ("{{{context}}} {question}}}", "{C} Q}"),
        ("{context}{question}{instructions}", "CQ"),
        ("{question} {context} {question}", "Q C Q"),
        ('JSON: {{"a": 1}}\n{context}\n{question}', 'JSON: {"a": 1}\nC\nQ'),
    ],
)
def test_literal_braces_render(text: str, expected: str) -> None:
    validate(text)
    assert render(Template("t", text), "Q", ["C"]) == expected


def _formatter_accepts(text: str) -> bool:
    """The reference: string.Formatter().parse plus the placeholder rules."""
    try:
        fields = [(f, s, c) for _, f, s, c in string.Formatter().parse(text) if f is not None]
    except ValueError:
        return False
    names = {f for f, _, _ in fields}
    plain = all(not s and c is None for _, s, c in fields)
    allowed = {"context", "question", "instructions"}
    return plain and names <= allowed and {"context", "question"} <= names


@pytest.mark.parametrize(
    "text",
    [
        "{context}{question}",
        "{{context}}{question}",
        "{context}}}{{question}",
        "{context}{question}}",
        "{context}{question}{{",
        "{{{context}}}{question}",
        "}}{context}{{{question}}}",
        "{context}{question!s}",
        "{context}{question}{instructions}",
        "{context}{question}{context}",
        "{context}\n\n{question}\n{",
        "a}b{context}{question}",
    ],
)
def test_validate_agrees_with_string_formatter(text: str) -> None:
    try:
        validate(text)
        ours = True
    except TemplateError:
        ours = False
    assert ours == _formatter_accepts(text)


# --- store --------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_store_save_get_list_versions(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    assert [t.name for t in store.list()] == list(PRESETS)
    first = store.save("Mine", GOOD)
    second = store.save("Mine", GOOD + "\nBe brief.", numbered=False)
    assert first.hash != second.hash
    assert (tmp_path / "templates").is_dir()
    assert len(list((tmp_path / "templates").glob("*/*.txt"))) == 2  # both versions on disk
    assert store.get("Mine") == second and not second.numbered
    assert [t.text for t in store.versions("Mine")] == [first.text, second.text]
    assert store.save("Mine", GOOD).hash == first.hash  # re-saving an old text makes it latest
    assert [t.hash for t in store.versions("Mine")] == [second.hash, first.hash]
    store.save("Another", "{question}\n{context}")
    fresh = TemplateStore(tmp_path)  # everything is persisted
    assert [t.name for t in fresh.list()] == [*PRESETS, "Another", "Mine"]
    assert fresh.get(SEED_TEMPLATE_NAME) is PRESETS[SEED_TEMPLATE_NAME]


def test_invalid_save_leaves_disk_unchanged(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    store.save("Mine", GOOD)
    before = _snapshot(tmp_path)
    with pytest.raises(TemplateError, match=r"no \{question\} placeholder"):
        store.save("Mine", "only {context}")
    assert _snapshot(tmp_path) == before
    assert store.get("Mine").text == GOOD


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "1 to 80 characters"),
        ("   ", "1 to 80 characters"),
        ("x" * 81, "1 to 80 characters"),
        ("two\nlines", "one line"),
        (DEFAULT_TEMPLATE_NAME, "is a built-in template"),
        (SEED_TEMPLATE_NAME.upper(), "is a built-in template"),
    ],
)
def test_bad_names(tmp_path: Path, name: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match=fragment):
        TemplateStore(tmp_path).save(name, GOOD)
    assert not (tmp_path / "templates").exists()


def test_get_from_file_and_unknown(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    path = tmp_path / "draft.txt"
    path.write_text(GOOD, encoding="utf-8")
    assert store.get(str(path)) == Template("draft", GOOD)
    path.write_text("no placeholders", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"no \{context\}"):
        store.get(str(path))
    with pytest.raises(TemplateError, match="cannot be read"):
        store.get(str(tmp_path / "missing.txt"))
    with pytest.raises(TemplateError, match="No template is named 'nope'; choose one of"):
        store.get("nope")


def test_active_and_diff(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    assert store.active() is PRESETS[DEFAULT_TEMPLATE_NAME]
    saved = store.save("Mine", GOOD)
    assert store.set_active("Mine") == saved
    assert TemplateStore(tmp_path).active() == saved
    with pytest.raises(TemplateError, match="No template is named 'ghost'"):
        store.set_active("ghost")
    store.set_active(SEED_TEMPLATE_NAME)
    assert store.active() is PRESETS[SEED_TEMPLATE_NAME]
    (tmp_path / "templates" / "active.json").write_text("{broken", encoding="utf-8")
    assert store.active() is PRESETS[DEFAULT_TEMPLATE_NAME]

    newer = store.save("Mine", GOOD.replace("Q:", "Question:"))
    diff = TemplateStore.diff(saved, newer)
    assert diff.splitlines()[:2] == [f"--- Mine ({saved.hash})", f"+++ Mine ({newer.hash})"]
    assert "-Q: {question}" in diff and "+Question: {question}" in diff
    assert store.diff(saved, saved) == ""


# --- token budget -------------------------------------------------------------------------

ENC = tokens.get_encoding("cl100k_base")
BLOCKS = [
    format_context(i + 1, "Reef fish", i + 2, i + 2, chunk)
    for i, chunk in enumerate(_seed_chunks())
]
EVIDENCE = PRESETS[DEFAULT_TEMPLATE_NAME]
QUESTION = competency_questions()[4]
ANSWER = 256


def _budget(window: int) -> int:
    return window - ANSWER - MESSAGE_OVERHEAD_TOKENS


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
@pytest.mark.parametrize("window", [1100, 1300, 1500, 1700, 1900, 2100, 4096])
def test_fit_takes_the_longest_prefix_that_fits(encoding: str, window: int) -> None:
    enc = tokens.get_encoding(encoding)
    prompt, used, count = fit(
        EVIDENCE, QUESTION, BLOCKS, encoding=enc, context_window=window, answer_tokens=ANSWER
    )
    assert count == len(enc.encode(prompt)) and count <= _budget(window)
    assert prompt == render(EVIDENCE, QUESTION, BLOCKS[:used])
    if used < len(BLOCKS):  # one more block would not fit
        assert tokens.count(render(EVIDENCE, QUESTION, BLOCKS[: used + 1]), enc) > _budget(window)


def test_fit_uses_more_blocks_in_a_bigger_window() -> None:
    used = [
        fit(EVIDENCE, QUESTION, BLOCKS, encoding=ENC, context_window=w, answer_tokens=ANSWER)[1]
        for w in (1100, 1500, 2100, 4096)
    ]
    assert used == sorted(used) and used[0] < used[-1] == len(BLOCKS)


def test_fit_keeps_the_ranked_order() -> None:
    ranked = [BLOCKS[3], BLOCKS[0], BLOCKS[2], BLOCKS[1]]
    prompt, used, _ = fit(
        EVIDENCE, QUESTION, ranked, encoding=ENC, context_window=1400, answer_tokens=ANSWER
    )
    assert 1 <= used < len(ranked)
    positions = [prompt.index(block) for block in ranked[:used]]
    assert positions == sorted(positions)
    assert ranked[used] not in prompt


def test_fit_truncates_a_first_block_that_alone_is_too_long() -> None:
    base = tokens.count(render(EVIDENCE, QUESTION, []), ENC)
    window = base + ANSWER + MESSAGE_OVERHEAD_TOKENS + 100
    prompt, used, count = fit(
        EVIDENCE, QUESTION, BLOCKS, encoding=ENC, context_window=window, answer_tokens=ANSWER
    )
    assert used == 1 and count == len(ENC.encode(prompt)) and count <= _budget(window)
    cut = prompt[prompt.index("[1] Reef fish") :].split("\n\nQuestion:")[0]
    assert cut.endswith(" …") and BLOCKS[0].startswith(cut.removesuffix(" …"))
    assert count > _budget(window) - 10  # the cut uses nearly all the room


@pytest.mark.parametrize(
    ("question", "spare", "fragment"),
    [
        (QUESTION * 80, -1, "The template and question alone need"),
        (QUESTION, 10, "leave only"),
    ],
)
def test_fit_raises_prompt_too_long(question: str, spare: int, fragment: str) -> None:
    base = tokens.count(render(EVIDENCE, question, []), ENC)
    window = base + ANSWER + MESSAGE_OVERHEAD_TOKENS + spare
    with pytest.raises(PromptTooLong) as caught:
        fit(EVIDENCE, question, BLOCKS, encoding=ENC, context_window=window, answer_tokens=ANSWER)
    assert fragment in str(caught.value) and "MARGIN_CONTEXT_WINDOW" in str(caught.value)
    assert caught.value.kind == "too_long"


def test_fit_without_blocks_and_seed_style() -> None:
    prompt, used, count = fit(
        EVIDENCE, QUESTION, [], encoding=ENC, context_window=2000, answer_tokens=ANSWER
    )
    assert used == 0 and count == len(ENC.encode(prompt))
    seed = PRESETS[SEED_TEMPLATE_NAME]
    chunks = _seed_chunks()
    prompt, used, count = fit(
        seed, QUESTION, chunks, encoding=ENC, context_window=8192, answer_tokens=ANSWER
    )
    assert used == 4 and prompt == render(seed, QUESTION, chunks)
