"""The course manifest: one :class:`Lab` entry per lab, and where its files live.

Every tool (release, validate, grade, scan's review flags), the book's checks and the project's
tests read :data:`LABS`. Adding a lab means adding one entry here plus the lab's own files
(chapter, bib file, solution notebook, checks module, mutants, test file); ``tests/test_manifest.py``
names whatever is missing.

>>> lab("3").chapter
'book/03_multihead_attention.md'
>>> lab("lab02").references
('labsupport.attention',)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

AUTOGRADER_DIR = Path(__file__).resolve().parent
ROOT = AUTOGRADER_DIR.parent
SOLUTIONS = ROOT / "solutions"
LABS_DIR = ROOT / "labs"
MUTANTS = AUTOGRADER_DIR / "mutants"
ALTERNATIVES = AUTOGRADER_DIR / "alternatives"


class CourseError(RuntimeError):
    """A lab name or course file that does not exist; the message says what does."""


@dataclass(frozen=True)
class Lab:
    """Everything that belongs to one lab.

    Paths are relative to the repository root; module names are importable dotted names.
    """

    id: str                          # nbgrader assignment name, e.g. "lab03_multihead_attention"
    title: str                       # e.g. "Multi-head attention"
    chapter: str                     # the book chapter, e.g. "book/03_multihead_attention.md"
    bib: str                         # the chapter's bibliography, listed in _config.yml
    checks: str                      # the named checks the test cells call, e.g. "labsupport.checks.lab03"
    references: tuple[str, ...]      # labsupport modules implementing what the student builds
    oracles: tuple[str, ...] = ()    # oracle libraries (top-level modules) the hidden checks compare with
    uses: tuple[str, ...] = ()       # earlier chapters' labsupport modules the lab builds on
    tests: tuple[str, ...] = ()      # the project's tests of this lab's reference and checks
    cpu_budget_s: int = 90           # the solution notebook must run within this on a 2-core CPU
    # grade a part that fails only because it calls an earlier answer's failing function with the
    # reference of that earlier answer substituted (one bug costs one part): autograder.diagnosis
    substitute_earlier: bool = False
    # automatic mutants (autograder.mutation) that cannot change behaviour: id → why
    equivalent_mutants: dict[str, str] = field(default_factory=dict, compare=False)
    notes: dict[str, str] = field(default_factory=dict, compare=False)  # free-form, for authors

    @property
    def number(self) -> int:
        """The chapter number: ``lab03_…`` → 3."""
        return int(self.id[3:5])

    @property
    def short(self) -> str:
        """``lab03``."""
        return self.id[:5]

    @property
    def source_notebook(self) -> Path:
        """The instructor notebook (solutions and hidden tests)."""
        return SOLUTIONS / self.id / f"{self.id}.ipynb"

    @property
    def release_notebook(self) -> Path:
        """The generated student notebook."""
        return LABS_DIR / self.id / f"{self.id}.ipynb"

    @property
    def mutants_dir(self) -> Path:
        """Known-wrong answers (``NAME.py``), each with the parts it must lose (:mod:`autograder.mutants`)."""
        return MUTANTS / self.id

    @property
    def alternatives_dir(self) -> Path:
        """Other correct answers (``NAME.py``, the mutant format) that must earn full marks."""
        return ALTERNATIVES / self.id

    @property
    def solution_dir(self) -> Path:
        return SOLUTIONS / self.id

    @property
    def release_dir(self) -> Path:
        return LABS_DIR / self.id

    @property
    def blocked_modules(self) -> tuple[str, ...]:
        """What an answer of this lab must not import: its own reference modules and its oracles."""
        return self.references + self.oracles


FLOAT_TIE = "a uniform float equals the threshold exactly with probability 2^-24 per token"

LABS: tuple[Lab, ...] = (
    Lab(id="lab01_tokenizers", title="Tokenizers", chapter="book/01_tokenizers.md",
        bib="book/bib/01_tokenizers.bib", checks="labsupport.checks.lab01",
        references=("labsupport.tokenizers",), oracles=("tokenizers", "transformers"),
        tests=("tests/test_tokenizers.py",)),
    Lab(id="lab02_attention", title="Attention", chapter="book/02_attention.md",
        bib="book/bib/02_attention.bib", checks="labsupport.checks.lab02",
        references=("labsupport.attention",), tests=("tests/test_attention.py",),
        equivalent_mutants={"scaled_dot_product_attention:L13:swap arguments":
                            "k.transpose(-1, -2) is k.transpose(-2, -1)"}),
    Lab(id="lab03_multihead_attention", title="Multi-head attention", chapter="book/03_multihead_attention.md",
        bib="book/bib/03_multihead.bib", checks="labsupport.checks.lab03",
        references=("labsupport.multihead",), uses=("labsupport.attention",),
        tests=("tests/test_multihead.py",),
        equivalent_mutants={"split_merge_heads:L5:swap arguments": "x.transpose(2, 1) is x.transpose(1, 2)"}),
    Lab(id="lab04_positional_encodings", title="Positional encodings", chapter="book/04_positional_encodings.md",
        bib="book/bib/04_positional.bib", checks="labsupport.checks.lab04",
        references=("labsupport.positional",), oracles=("transformers",),
        tests=("tests/test_positional.py",)),
    Lab(id="lab05_bert", title="BERT", chapter="book/05_bert.md",
        bib="book/bib/05_bert.bib", checks="labsupport.checks.lab05",
        references=("labsupport.bert",), oracles=("transformers",),
        uses=("labsupport.attention", "labsupport.multihead"),
        tests=("tests/test_bert.py",),
        equivalent_mutants={f"mlm_masking:L{line}:{op}": FLOAT_TIE
                            for line, op in ((10, "Lt->LtE"), (14, "Lt->LtE"), (15, "Lt->LtE"), (15, "GtE->Gt"))}),
    Lab(id="lab06_gpt", title="GPT", chapter="book/06_gpt.md",
        bib="book/bib/06_gpt.bib", checks="labsupport.checks.lab06",
        references=("labsupport.gpt", "labsupport.sampling"), oracles=("transformers",),
        uses=("labsupport.attention", "labsupport.multihead"),
        tests=("tests/test_gpt.py",),
        equivalent_mutants={"sampling:L4:GtE->Gt": "top-k with k = V keeps every logit, as returning them all does",
                            **dict.fromkeys(("gpt_model:L21:remove For", "gpt_model:L22:remove If",
                                             "gpt_model:L23:remove Expr", "gpt_model:L23:const 0.02->0.04",
                                             "gpt_model:L24:remove If", "gpt_model:L25:remove Expr"),
                                            "the specification leaves the initialisation ungraded (the grader "
                                            "loads its own weights)")}),
    Lab(id="lab07_t5", title="T5", chapter="book/07_t5.md",
        bib="book/bib/07_t5.bib", checks="labsupport.checks.lab07",
        references=("labsupport.t5",), oracles=("transformers",), uses=("labsupport.multihead",),
        tests=("tests/test_t5.py",),
        equivalent_mutants={"noise_mask:L10:swap arguments": "min and max are symmetric",
                            "noise_mask:L11:swap arguments": "max is symmetric"}),
    Lab(id="lab08_efficient_transformers", title="Efficient transformers", chapter="book/08_efficient_transformers.md",
        bib="book/bib/08_efficient.bib", checks="labsupport.checks.lab08",
        references=("labsupport.efficient",), uses=("labsupport.attention", "labsupport.multihead"),
        tests=("tests/test_efficient.py",),
        equivalent_mutants={"blockwise_attention:L36:swap arguments": "torch.maximum is symmetric",
                            "xl_memory:L19:swap arguments": "max is symmetric"}),
    Lab(id="lab09_vit_mae", title="Vision transformers and masked autoencoders", chapter="book/09_vit_mae.md",
        bib="book/bib/09_vit.bib", checks="labsupport.checks.lab09",
        references=("labsupport.vit",), oracles=("transformers",), uses=("labsupport.multihead",),
        tests=("tests/test_vit.py",),
        equivalent_mutants={"vit_classifier:L14:const 0.02->0.04":
                            "the specification leaves pos_embed's initial scale free; the grader loads its weights"}),
    Lab(id="lab10_lora", title="LoRA and parameter-efficient fine-tuning", chapter="book/10_lora.md",
        bib="book/bib/10_lora.bib", checks="labsupport.checks.lab10",
        references=("labsupport.lora",), oracles=("peft",), uses=("labsupport.gpt",),
        tests=("tests/test_lora.py",)),
    Lab(id="lab11_rlhf", title="RLHF: reward models, policy gradients and DPO", chapter="book/11_rlhf.md",
        bib="book/bib/11_rlhf.bib", checks="labsupport.checks.lab11",
        references=("labsupport.rlhf",), oracles=("trl", "transformers"), uses=("labsupport.gpt",),
        tests=("tests/test_rlhf.py",),
        equivalent_mutants={"sequence_logprobs:L8:drop USub": "sum(1) is sum(-1) on the (B, T-1) log-probabilities",
                            "pg_kl_loss:L5:drop USub": "sum(1) is sum(-1) on the (B, T) per-token terms",
                            "pg_kl_loss:L4:remove Assign":
                            "multiplying by a bool or integer mask promotes it to the log-probabilities' dtype"}),
    Lab(id="lab12_distillation", title="Distillation", chapter="book/12_distillation.md",
        bib="book/bib/12_distillation.bib", checks="labsupport.checks.lab12",
        references=("labsupport.distill",), uses=("labsupport.gpt",),
        tests=("tests/test_distill.py",),
        equivalent_mutants={"distillation_loss:L13:drop USub": "dim=1 is dim=-1 on the flattened (n, V) logits",
                            "distillation_loss:L13:drop USub#2": "dim=1 is dim=-1 on the flattened (n, V) logits",
                            "distill_step:L10:const True->False":
                            "every parameter of the student gets a gradient, so zeroed and None gradients step alike"}),
)


def all_labs() -> list[str]:
    """Ids of every lab in the manifest, in order (``lab01_tokenizers``, …)."""
    return [entry.id for entry in LABS]


def lab(name: str) -> Lab:
    """The manifest entry for a full id, ``lab01`` or ``1``."""
    ids = all_labs()
    prefix = f"lab{int(name):02d}" if name.isdigit() else name
    matches = [entry for entry in LABS if name == entry.id or entry.short == prefix]
    if len(matches) != 1:
        raise CourseError(f"unknown lab {name!r}; the course has: {', '.join(ids) or 'none'}")
    return matches[0]


def resolve_lab(name: str) -> str:
    """Full lab id from a full id, ``lab01`` or ``1``."""
    return lab(name).id


def source_notebook(lab_id: str) -> Path:
    """The instructor notebook (solutions and hidden tests) of ``lab_id``."""
    return lab(lab_id).source_notebook


def release_notebook(lab_id: str) -> Path:
    """The generated student notebook of ``lab_id``."""
    return lab(lab_id).release_notebook
