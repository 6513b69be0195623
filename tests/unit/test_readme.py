"""README.md against the code: the page defaults it states, and where its measured tables
come from.

- The generated table of every page's defaults (between the ``page-defaults`` markers) must
  be exactly what ``bench/readme_defaults.py`` renders from the experiments' declarations
  today (``Experiment.page_default`` on the default dataset).
- The defaults the prose states (``default T = 1, 10, 100``, ``PGD (40 steps, 2 restarts by
  default)``, …) are each matched by a pattern below and compared with the same code.
- Every table of measured numbers (the ``## Measured`` section, benchmarks included) names the
  command that produced it and a date, and a timing table also says what the machine's load
  was.

Nothing is trained or measured here: only declarations are read.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import readme_defaults  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
FLAT = re.sub(r"\s+", " ", README)  # prose wraps anywhere


@pytest.fixture(scope="module")
def ds(mnist5k):
    from robustcore.data import DEFAULT_DATASET

    # The README states its defaults and figures for mnist5k, the app's default dataset.
    assert DEFAULT_DATASET == mnist5k.name == "mnist5k"
    return mnist5k


@pytest.fixture(scope="module")
def d(ds) -> dict[str, Any]:
    """Every page's default run, flattened (``d["whitebox"]["pgd.steps"]``), plus the
    model each page starts on (``d["whitebox"]["model.arch"]``, ``…["model.epochs"]``)."""
    from robustcore.experiments import Target, get, load_all
    from robustcore.experiments.registry import MODULES
    from robustcore.models import TrainRecipe, default_architecture

    load_all()
    session = Target.zoo(default_architecture(ds), TrainRecipe())
    out: dict[str, Any] = {}
    for name in MODULES:
        exp = get(name).page_default(ds, session)
        values = dict(readme_defaults.flatten(exp.to_dict()))
        if exp.target is not None:
            values["model.arch"] = exp.target.arch
            values |= dict(readme_defaults.flatten(exp.target.recipe.to_dict(), "model."))
        out[name] = values
    return out


def test_the_generated_defaults_table_is_the_codes(ds):
    expected = readme_defaults.block(ds.name)
    assert readme_defaults.readme_block(README) == expected, (
        "README.md's table of page defaults differs from the code: run "
        "`python bench/readme_defaults.py --write` (and update any sentence of the README "
        "that states the changed default)"
    )


# -- defaults stated in the prose ------------------------------------------------------------

_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e-?\d+)?")


def numbers(text: str) -> list[float]:
    """The numbers of a README phrase: "1,000" is one thousand, "1, 10, 100" three values."""
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text)]


def pct(x: float) -> float:
    return round(100 * x, 6)


def _monitor():
    from robustcore.defenses.training import monitor

    return monitor


METHOD = {"fgsm_rs": "FGSM-RS", "pgd_at": "PGD-AT", "trades": "TRADES"}


@dataclass(frozen=True)
class Claim:
    """A README phrase stating defaults: ``pattern`` (on the README with whitespace
    collapsed) must match at least once, and each match's groups must read ``expected(d)``:
    a number or a list of numbers is compared with the numbers in the group, a string with
    the group's text."""

    where: str
    pattern: str
    expected: Callable[[dict[str, Any]], list[Any]]


CLAIMS = [
    Claim(
        "Pages: Adversarial training's PGD",
        r"with the same PGD \((\d+) steps, (\d+) restarts by default\)",
        lambda d: [
            d["adversarial_training"]["pgd.steps"],
            d["adversarial_training"]["pgd.restarts"],
        ],
    ),
    Claim(
        "Pages: Adversarial training's defense",
        r"The default \(([A-Z-]+) at ε = ([\d.]+), (\d+) epochs, on the default (CNN)\)",
        lambda d: [
            METHOD[d["adversarial_training"]["defense.method"]],
            d["adversarial_training"]["defense.adv_eps"],
            d["adversarial_training"]["defense.epochs"],
            {"small_cnn": "CNN"}.get(d["adversarial_training"]["model.arch"]),
        ],
    ),
    Claim(
        "Pages: Adversarial training's monitor",
        r"\(clean and PGD-(\d+) accuracy on (\d+) held-out images per epoch",
        lambda d: [_monitor().MONITOR_STEPS, _monitor().EVAL_N],
    ),
    Claim(
        "Pages: Defensive distillation's temperatures",
        r"\(default T = ([\d, ]+);",
        lambda d: [d["defensive_distillation"]["temperatures"]],
    ),
    Claim(
        "Pages: Model extraction's sweep",
        r"Default: budgets ([\d/,]+) × (both) outputs × (in-distribution) and (other-dataset) "
        r"queries = (\d+) (MLP) students",
        lambda d: [
            d["model_extraction"]["budgets"],
            "both" if len(d["model_extraction"]["outputs"]) == 2 else "?",
            *[s.replace("_", "-") for s in d["model_extraction"]["query_sources"]],
            len(d["model_extraction"]["budgets"])
            * len(d["model_extraction"]["outputs"])
            * len(d["model_extraction"]["query_sources"]),
            d["model_extraction"]["student.student_arch"].upper(),
        ],
    ),
    Claim(
        "Pages: Query limitation's detector",
        r"\(mean distance to the k nearest, inputs pooled to (\d+)×\d+ or the model's "
        r"penultimate features\).*? for a target false-positive rate \(([\d.]+) %\)",
        lambda d: [d["query_limitation"]["limit.pool"], pct(d["query_limitation"]["limit.fpr"])],
    ),
    Claim(
        "Pages: White-box what-if",
        r"\(e\.g\. PGD-\d+ instead of PGD-(\d+),",
        lambda d: [d["whitebox"]["pgd.steps"]],
    ),
    Claim(
        "API: ZOO's attack space",
        r"upsampled bilinearly; default (\d+)×(\d+)\)",
        lambda d: [d["blackbox"]["zoo.resize"], d["blackbox"]["zoo.resize"]],
    ),
    Claim(
        "API: ModelStealing",
        r"`student_arch` \(default `(\w+)`\), `epochs` \((\d+)\), `lr` \(([\de.-]+)\), "
        r"`batch_size` \((\d+)\)",
        lambda d: [
            d["model_extraction"]["student.student_arch"],
            d["model_extraction"]["student.epochs"],
            d["model_extraction"]["student.lr"],
            d["model_extraction"]["student.batch_size"],
        ],
    ),
    Claim(
        "API: MIFace",
        r"`MIFace` fields: `steps` \((\d+)\), `lr` \(([\d.]+)\), `loss` \(`(\w+)` \|.*?"
        r"`tv_weight` \(([\d.]+)\), `l2_weight` \(([\d.]+)\), `init` \(`(\w+)` \|.*?"
        r"`threshold` \(([\d.]+), γ\), `patience` \((\d+), β\)",
        lambda d: (
            [
                d["model_inversion"][f"miface.{k}"]
                for k in ("steps", "lr", "loss", "tv_weight", "l2_weight", "init", "threshold")
            ]
            + [d["model_inversion"]["miface.patience"]]
        ),
    ),
    Claim(
        "API: ActivationClustering",
        r"`reduce` = `(\w+)` \(default: .*?`n_components` = (\d+) dimensions.*?`n_init` = (\d+) "
        r"k-means starts.*?`rule` = `([\w+]+)`.*?`size_threshold` = (\d+) %.*?"
        r"`silhouette_threshold` = ([\d.]+),.*?`margin` = ([\d.]+):.*?"
        r"`second_opinion` = `(\w+)` \(default\)",
        lambda d: [
            d["poisoning_sanitization"]["clustering.reduce"],
            d["poisoning_sanitization"]["clustering.n_components"],
            d["poisoning_sanitization"]["clustering.n_init"],
            d["poisoning_sanitization"]["clustering.rule"],
            pct(d["poisoning_sanitization"]["clustering.size_threshold"]),
            d["poisoning_sanitization"]["clustering.silhouette_threshold"],
            d["poisoning_sanitization"]["clustering.margin"],
            d["poisoning_sanitization"]["clustering.second_opinion"],
        ],
    ),
    Claim(
        "API: Postprocessing's membership attacker",
        r"`membership` \((\d+) shadow models by default\)",
        lambda d: [d["postprocessing"]["membership.shadow_models"]],
    ),
    Claim(
        "Measured: the default model",
        r"Default model \(`(\w+)`, (\d+) epochs, (Adam) lr ([\de.-]+), batch (\d+), seed (\d+)\) "
        r"on `(\w+)`",
        lambda d: [
            d["train"]["model.arch"],
            d["train"]["model.epochs"],
            d["train"]["model.optimizer"].capitalize(),
            d["train"]["model.lr"],
            d["train"]["model.batch_size"],
            d["train"]["model.seed"],
            "mnist5k",
        ],
    ),
    Claim(
        "Measured: poisoning's recipe",
        r"default recipe: (\w+), (\d+) epochs, (Adam) ([\de.-]+), batch (\d+), seed (\d+)",
        lambda d: [
            d["poisoning_sanitization"]["model.arch"],
            d["poisoning_sanitization"]["model.epochs"],
            d["poisoning_sanitization"]["model.optimizer"].capitalize(),
            d["poisoning_sanitization"]["model.lr"],
            d["poisoning_sanitization"]["model.batch_size"],
            d["poisoning_sanitization"]["model.seed"],
        ],
    ),
    Claim(
        "Measured: White-box page's images",
        r"\(`small_cnn`, 5 epochs, [\d.]+ % on the (\d+) seeded test images the page uses\)",
        lambda d: [d["whitebox"]["n"]],
    ),
    Claim(
        "Measured: White-box page's C&W",
        r"half of it is C&W on (\d+) images",
        lambda d: [d["whitebox"]["n_cw"]],
    ),
    Claim(
        "Measured: distillation's and adversarial training's C&W",
        r"Its C&W runs on (\d+) images \(was 100\), as on the (Adversarial training) page",
        lambda d: [
            d["defensive_distillation"]["n_cw"],
            "Adversarial training"
            if d["adversarial_training"]["n_cw"] == d["defensive_distillation"]["n_cw"]
            else "(not the Adversarial training page's)",
        ],
    ),
    Claim(
        "Measured: adversarial training's defended model",
        r"to train the defended model \(([A-Z-]+), (\d+) epochs,",
        lambda d: [
            METHOD[d["adversarial_training"]["defense.method"]],
            d["adversarial_training"]["defense.epochs"],
        ],
    ),
    Claim(
        "Measured: Black-box page's default run",
        r"The Black-box page's default run \((\d+) images, all (three) attacks\)",
        lambda d: [d["blackbox"]["n"], {3: "three"}.get(len(d["blackbox"]["attacks"]))],
    ),
    Claim(
        "Measured: Threat models page's default run",
        r"The page's default run \((\d+) images\)",
        lambda d: [d["threat_models"]["n"]],
    ),
    Claim(
        "Measured: query limitation's settings",
        r"budget ([\d,]+) per client, k = (\d+), history ([\d,]+), inputs pooled to (\d+)×\d+, "
        r"threshold [\d.]+ for ([\d.]+) % false positives on ([\d,]+) training images",
        lambda d: (
            [d["query_limitation"][f"limit.{k}"] for k in ("budget", "k", "history", "pool")]
            + [pct(d["query_limitation"]["limit.fpr"]), d["query_limitation"]["limit.calibration"]]
        ),
    ),
    Claim(
        "Measured: query limitation's benign clients",
        r"\((\d+) honest clients × (\d+) held-out test images, the page default\)",
        lambda d: [
            d["query_limitation"]["benign.clients"],
            d["query_limitation"]["benign.queries"],
        ],
    ),
    Claim(
        "Measured: query limitation's default run",
        r"The default run \((\d+) images, (three) attacks, benign streams\)",
        lambda d: [
            d["query_limitation"]["n"],
            {3: "three"}.get(len(d["query_limitation"]["attacks"])),
        ],
    ),
    Claim(
        "Measured: membership inference's target",
        r"the page's default overfit model, an (MLP) \(256-128\) trained on the first (\d+) "
        r"training digits for (\d+) epochs",
        lambda d: [
            d["membership_inference"]["model.arch"].upper(),
            d["membership_inference"]["model.train_size"],
            d["membership_inference"]["model.epochs"],
        ],
    ),
    Claim(
        "Measured: output defenses' attackers",
        r"strongest of the 7 attacks with K=(\d+) shadow models per attacker \(\d+ × (\d+) for "
        r"the ensemble rows\).*?a copycat (MLP) trained on (\d+) (in-distribution) queries "
        r"\((probabilities) as returned, (\d+) epochs, batch (\d+)\)",
        lambda d: [
            d["postprocessing"]["membership.shadow_models"],
            d["postprocessing"]["ensemble.members"],
            d["postprocessing"]["student.student_arch"].upper(),
            d["postprocessing"]["steal_budget"],
            d["postprocessing"]["steal_source"].replace("_", "-"),
            d["postprocessing"]["steal_output"],
            d["postprocessing"]["student.epochs"],
            d["postprocessing"]["student.batch_size"],
        ],
    ),
    Claim(
        "Measured: output defenses' settings",
        r"\| Rounding \((\d+) decimals\) \|.*?\| Top-(\d+) \|.*?\| Reverse sigmoid \(β=([\d.]+), "
        r"γ=([\d.]+)\) \|.*?\| Temperature \(T=([\d.]+)\) \|.*?\| Ensemble ×(\d+) \(average\) \|",
        lambda d: [
            d["postprocessing"]["rounding.decimals"],
            d["postprocessing"]["top_k.k"],
            d["postprocessing"]["reverse_sigmoid.beta"],
            d["postprocessing"]["reverse_sigmoid.gamma"],
            d["postprocessing"]["temperature.temperature"],
            d["postprocessing"]["ensemble.members"],
        ],
    ),
    Claim(
        "Measured: model extraction's student",
        r"\*\*Model extraction\*\*: (MLP) student, (\d+) epochs, Adam ([\de.-]+), batch (\d+), "
        r"seed (\d+)\.",
        lambda d: [
            d["model_extraction"]["student.student_arch"].upper(),
            d["model_extraction"]["student.epochs"],
            d["model_extraction"]["student.lr"],
            d["model_extraction"]["student.batch_size"],
            d["model_extraction"]["student.seed"],
        ],
    ),
    Claim(
        "Measured: model inversion's MIFace",
        r"default MIFace \((\d+) steps, step size ([\d.]+), cost 1 − p, threshold ([\d.]+), "
        r"patience (\d+)\)",
        lambda d: [
            d["model_inversion"][f"miface.{k}"] for k in ("steps", "lr", "threshold", "patience")
        ],
    ),
    Claim(
        "Measured: sanitization's page default",
        r"\| (all-to-one) (\d+) % \(page default\) \| [\d.]+ % \| (activation clustering) "
        r"\((best): ICA or PCA\)",
        lambda d: [
            d["poisoning_sanitization"]["attack.mode"].replace("_", "-"),
            pct(d["poisoning_sanitization"]["poison_rate"]),
            d["poisoning_sanitization"]["detector"].replace("_", " "),
            d["poisoning_sanitization"]["clustering.reduce"],
        ],
    ),
    Claim(
        "Measured: the default trigger",
        r"\*\*BadNets\*\* \(all-to-one → class (\d+), (\d+)×(\d+) (checkerboard) bottom-right\)",
        lambda d: [
            d["backdoors"]["target_class"],
            d["backdoors"]["trigger.size"],
            d["backdoors"]["trigger.size"],
            d["backdoors"]["trigger.pattern"],
        ],
    ),
    Claim(
        "Measured: the hidden trigger's poisons",
        r"\*\*Hidden trigger\*\* \(source (\d+) → target (\d+), (all) 400 target-class training "
        r"images turned into clean-label poisons, (\d+) sign-gradient steps, the (\d+)×(\d+) "
        r"trigger at test time only\)",
        lambda d: [
            d["hidden_trigger"]["source_class"],
            d["hidden_trigger"]["target_class"],
            "all" if d["hidden_trigger"]["attack.poison_fraction"] == 1 else "(a share of)",
            d["hidden_trigger"]["attack.steps"],
            d["hidden_trigger"]["trigger.size"],
            d["hidden_trigger"]["trigger.size"],
        ],
    ),
    Claim(
        "Measured: the default trigger's size",
        r"which is why the default trigger is (\d+)×(\d+)",
        lambda d: [d["backdoors"]["trigger.size"], d["hidden_trigger"]["trigger.size"]],
    ),
    Claim(
        "Measured: what the poisoning pages' default runs train",
        r"\(BadNets rates (\d+) and (\d+) %, the clean model standing for (\d+) %; hidden trigger "
        r"(\d+) sets of poisons; label flipping (\d+) and (\d+) %\)",
        lambda d: (
            [pct(r) for r in sorted(d["backdoors"]["poison_rates"])[1:]]
            + [pct(min(d["backdoors"]["poison_rates"])), len(d["hidden_trigger"]["eps"])]
            + [pct(r) for r in sorted(d["label_flipping"]["rates"])[1:]]
        ),
    ),
]


def _matches(expected: list[Any], groups: tuple[str, ...]) -> bool:
    if len(expected) != len(groups):
        return False
    for want, got in zip(expected, groups, strict=True):
        if isinstance(want, str):
            if want != got.strip():
                return False
        else:
            want_list = list(want) if isinstance(want, list | tuple) else [want]
            if numbers(got) != pytest.approx([float(w) for w in want_list]):
                return False
    return True


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.where for c in CLAIMS])
def test_a_default_the_prose_states_is_the_codes(claim, d):
    found = list(re.finditer(claim.pattern, FLAT))
    assert found, (
        f"{claim.where}: the README no longer has a phrase matching {claim.pattern!r}; if it "
        "was rewritten, update this claim in tests/unit/test_readme.py"
    )
    expected = claim.expected(d)
    for m in found:
        assert _matches(expected, m.groups()), (
            f"{claim.where}: the README says {m.group(0)!r}, the code's defaults are {expected!r}"
        )


# -- where measured tables come from ---------------------------------------------------------

DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
LOAD = re.compile(r"\bload\b|\bidle\b", re.I)
TIMING = re.compile(r"\bs\b|\bseconds?\b|\bms\b|s ?/ ?(?:epoch|image|step)|\btime\b|wall", re.I)
_FENCE = re.compile(r"^```(\w*)\n.*?^```", re.M | re.S)
_SPAN = re.compile(r"`([^`]+)`")
_RUNS = re.compile(r"\b(?:python|pytest|bash)\b|\.ci/run")


def names_a_command(text: str) -> bool:
    """A fenced shell block, or a command (``python …``) in a code span."""
    if any(lang in ("bash", "sh") for lang in _FENCE.findall(text)):
        return True
    return any(_RUNS.search(span) for span in _SPAN.findall(_FENCE.sub("", text)))


@dataclass
class Table:
    line: int  # 1-based line of its header
    header: str
    lead_in: str  # the text since the previous table or heading of level ≤ 3
    after_table: bool  # the lead-in starts right after another table
    numeric: bool
    trailer: (
        str  # a note or list right after it, "(…)" or "- …" (some outputs print the load there)
    )
    section: str  # its ### section's text before the section's first table


def measured_tables(text: str) -> list[Table]:
    """The Markdown tables of the ``## Measured`` section, with what surrounds them."""
    lines = text.split("\n")
    start = next(i for i, s in enumerate(lines) if s.startswith("## Measured"))
    tables: list[Table] = []
    lead: list[str] = []
    section: str | None = None
    after_table = False
    fence = False
    i = start
    while i < len(lines):
        s = lines[i]
        if s.startswith("```"):
            fence = not fence
        if not fence and s.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            k = j
            while k < len(lines) and not lines[k].strip():
                k += 1
            end = k
            if k < len(lines) and lines[k].startswith(("(", "- ", "> ")):  # a note on the run
                while end < len(lines) and lines[end].strip() and not lines[end].startswith("|"):
                    end += 1
            body = "\n".join(lines[i + 2 : j])
            if section is None:
                section = "\n".join(lead)
            tables.append(
                Table(
                    line=i + 1,
                    header=s,
                    lead_in="\n".join(lead),
                    after_table=after_table,
                    numeric=bool(re.search(r"\d", body)),
                    trailer="\n".join(lines[k:end]),
                    section=section,
                )
            )
            lead, after_table, i = [], True, j
            continue
        if not fence and s.startswith("## ") and i > start:
            break  # the end of the Measured section
        if not fence and re.match(r"#{2,3} ", s):
            lead, after_table, section = [s], False, None
        else:
            lead.append(s)
        i += 1
    return tables


def provenance(tables: list[Table], k: int) -> str:
    """A table's lead-in and trailer; a lead-in that names neither a command nor a date
    continues the previous table's output (the next part of the same pasted run), so the
    previous table's provenance is its too."""
    t = tables[k]
    own = t.lead_in + "\n" + t.trailer
    if t.after_table and not names_a_command(t.lead_in) and not DATE.search(t.lead_in):
        return provenance(tables, k - 1) + "\n" + own
    return own


def test_the_measured_tables_are_found():
    tables = [t for t in measured_tables(README) if t.numeric]
    assert len(tables) >= 20  # the sections below ## Measured, so the test sees them


def test_every_measured_table_names_its_command_and_date():
    tables = measured_tables(README)
    problems = []
    for k, t in enumerate(tables):
        if not t.numeric:
            continue
        where = f"README.md:{t.line} ({t.header[:60]}…)"
        src = provenance(tables, k)
        if not names_a_command(src):
            problems.append(f"{where}: no command (`python …`) next to the table")
        if not DATE.search(src):
            problems.append(f"{where}: no date (YYYY-MM-DD) of the run next to the table")
        if TIMING.search(t.header) and not LOAD.search(src + "\n" + t.section):
            problems.append(f"{where}: a timing table that does not say the machine's load")
    assert not problems, "\n".join(problems)


def test_the_provenance_check_catches_a_table_without_one():
    text = (
        "## Measured\n\n> 2026-12-02 12:55 UTC — `python bench/x.py` — load 1.0\n\n"
        "| a | seconds |\n|---|---|\n| x | 1.0 |\n\n- wall time 3 s\n\n#### 2. next part\n\n"
        "| b | c |\n|---|---|\n| y | 2 |\n\n"
        "### Measured: other\n\nSome prose with 96 % in it.\n\n| d | seconds |\n|---|---|\n"
        "| z | 3 |\n\nAgain (`python -m robustcore foo`):\n\n| e | f |\n|---|---|\n| w | 4 |\n"
        "\n(`python -m robustcore bar`, 2026-12-01)\n\n## Layout\n\n| g |\n|---|\n| 5 |\n"
    )
    tables = measured_tables(text)
    assert [t.line for t in tables] == [5, 13, 21, 27]
    assert DATE.search(provenance(tables, 1))  # the same run's second part
    assert not DATE.search(provenance(tables, 2))  # a new section: its own lead-in only
    assert not LOAD.search(provenance(tables, 2) + tables[2].section)
    assert DATE.search(provenance(tables, 3))  # its own command, dated in the line after it
    assert names_a_command("```bash\npython x.py\n```") and not names_a_command("`a` python `b`")
