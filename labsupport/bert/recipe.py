"""The course's tiny BERT: pre-training recipe, checkpoint loading, and fine-tuning on sentence polarity.

``python -m labsupport.pretrain bert`` runs :func:`pretrain_checkpoint`: a WordPiece vocabulary and
a 2-layer BERT trained with masked LM (no next-sentence prediction, as RoBERTa) on the texts of the
polarity training sentences (never their labels), deterministically on the CPU (about 20 minutes on 2 cores).
It writes ``labsupport/data/checkpoints/bert.{safetensors,json,md}`` and ``bert.vocab.txt``.
Chapters and labs call :func:`load_pretrained`; nothing is downloaded.

BERT's own recipe, scaled down: AdamW (β₂ = 0.999, weight decay 0.01), linear warm-up over the first
10 % of steps then linear decay to 0, dropout 0.1, 15 % of tokens chosen for prediction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from labsupport import checkpoints, data
from labsupport.bert import data as bert_data
from labsupport.bert.config import BertConfig
from labsupport.bert.heads import BertForMaskedLM, BertForSequenceClassification
from labsupport.bert.masking import IGNORE, mask_tokens
from labsupport.train import TrainConfig, fit

NAME = "bert"
VOCAB_SIZE = 3000
CONFIG = dict(d_model=64, n_layers=2, n_heads=4, d_ff=256, max_len=64)
RECIPE = dict(steps=1200, batch_size=64, seq_len=64, lr=3e-3, warmup=0.1, weight_decay=0.01, p=0.15)
FINETUNE = dict(steps=150, batch_size=32, lr=1e-3, max_len=48, n_train=1000)  # few labels: 1,000 sentences


def mlm_loss(model: BertForMaskedLM, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Masked-LM loss computing the vocabulary logits only where a prediction is asked (fast path)."""
    h = model.bert(inputs)  # (B, T, d)
    chosen = labels != IGNORE  # (B, T)
    h = model.transform_norm(F.gelu(model.transform(h[chosen])))  # (N, d), N chosen positions
    return F.cross_entropy(model.decoder(h), labels[chosen])  # (N, V) → scalar


def pretrain_checkpoint(seed: int = 0) -> Path:
    """Train the tiny BERT from scratch and write the checkpoint (see the module docstring)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    texts = bert_data.pretraining_texts()
    vocab_file = checkpoints.CHECKPOINT_DIR / "bert.vocab.txt"
    checkpoints.CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    bert_data.train_vocab(texts, VOCAB_SIZE, vocab_file)
    tokenizer = bert_data.load_tokenizer(vocab_file)
    stream = bert_data.token_stream(tokenizer, texts)
    config = BertConfig(vocab_size=len(bert_data.vocab_list(vocab_file)), fast=True, **CONFIG)
    model = BertForMaskedLM(config)
    r = RECIPE
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    warm = int(r["warmup"] * r["steps"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (r["steps"] - s) / (r["steps"] - warm))))
    gen = torch.Generator().manual_seed(seed)
    batches = bert_data.stream_batches(stream, r["seq_len"], r["batch_size"], gen)
    special = list(range(len(bert_data.SPECIAL_TOKENS)))
    losses = []
    model.train()
    for _ in (bar := tqdm(range(r["steps"]), desc="pre-training tiny BERT")):
        inputs, labels = mask_tokens(next(batches), special, bert_data.MASK, config.vocab_size, gen, r["p"])
        loss = mlm_loss(model, inputs, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    val_loss = held_out_mlm_loss(model, tokenizer, seed)
    config.fast = False
    pretrain_s = time.perf_counter() - t0
    ft = compare_finetuning(model.state_dict(), config, tokenizer, seed=seed, progress=False)
    n_params = sum(p.numel() for p in model.parameters())
    meta = {"config": asdict(config), "recipe": r, "seed": seed, "tokens_in_stream": len(stream),
            "parameters": n_params, "pretrain_seconds": round(pretrain_s, 1),
            "final_train_loss": round(sum(losses[-50:]) / 50, 4), "heldout_mlm_loss": round(val_loss, 4),
            "loss_curve": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4) for i in range(0, len(losses), 50)],
            "finetune": FINETUNE, "finetune_accuracy": {k: round(v["accuracy"], 4) for k, v in ft.items()}}
    card = _model_card(meta)
    out = checkpoints.save(NAME, model.state_dict(), meta, card)
    out.chmod(0o644)  # readable by every user (safetensors may write the file private)
    data.record({"checkpoints/bert.vocab.txt": data.sha256(vocab_file)})
    return out


@torch.no_grad()
def held_out_mlm_loss(model: BertForMaskedLM, tokenizer, seed: int = 0, batches: int = 8) -> float:
    """MLM loss on the *test* polarity sentences (never seen in pre-training), fixed masks."""
    texts = bert_data.polarity_split()[1][0]
    stream = bert_data.token_stream(tokenizer, texts)
    gen = torch.Generator().manual_seed(seed + 1)
    it = bert_data.stream_batches(stream, 64, 64, gen)
    special = list(range(len(bert_data.SPECIAL_TOKENS)))
    losses = [mlm_loss(model, *mask_tokens(next(it), special, bert_data.MASK, model.config.vocab_size, gen)).item()
              for _ in range(batches)]
    return sum(losses) / len(losses)


def load_pretrained() -> tuple[BertConfig, dict[str, torch.Tensor]]:
    """The shipped tiny BERT: its config and its (verified) state dict in this package's names."""
    state, meta = checkpoints.load(NAME)
    return BertConfig(**meta["config"]), state


def pretrained_mlm() -> BertForMaskedLM:
    """The shipped tiny BERT as a :class:`BertForMaskedLM` in eval mode."""
    config, state = load_pretrained()
    model = BertForMaskedLM(config)
    model.load_state_dict(state)
    return model.eval()


def load_encoder(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy the pre-trained encoder (every ``bert.*`` weight) into ``model``; its heads stay as they are."""
    encoder = {k: v for k, v in state.items() if k.startswith("bert.")}
    missing, unexpected = model.load_state_dict(encoder, strict=False)
    lost = [k for k in missing if k.startswith("bert.")]
    if lost or unexpected:
        raise KeyError(f"the model's encoder does not match the checkpoint: missing {lost}, unexpected {unexpected}")


def polarity_tensors(tokenizer, max_len: int, seed: int = 0):
    """The polarity split encoded: ``((ids, mask, labels) train, (ids, mask, labels) test)``."""
    (tr_x, tr_y), (te_x, te_y) = bert_data.polarity_split(seed)
    return ((*bert_data.encode_batch(tokenizer, tr_x, max_len), torch.tensor(tr_y)),
            (*bert_data.encode_batch(tokenizer, te_x, max_len), torch.tensor(te_y)))


@torch.no_grad()
def accuracy(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 500) -> float:
    """Fraction of correct argmax predictions of ``model(ids, attention_mask=mask)[0]``."""
    dev = next(model.parameters()).device
    correct = 0
    for i in range(0, len(ids), batch_size):
        logits = model(ids[i:i + batch_size].to(dev), attention_mask=mask[i:i + batch_size].to(dev))[0]
        correct += (logits.argmax(-1).cpu() == labels[i:i + batch_size]).sum().item()
    return correct / len(ids)


def finetune(model: torch.nn.Module, train, test, steps: int = FINETUNE["steps"],
             batch_size: int = FINETUNE["batch_size"], lr: float = FINETUNE["lr"], seed: int = 0,
             eval_every: int = 25, progress: bool = True, device: torch.device | None = None) -> dict:
    """Fine-tune a classifier ``model(ids, attention_mask=, labels=) → (logits, loss)`` on ``train``.

    ``train``/``test`` are ``(ids, mask, labels)``. Returns ``losses`` (per step), ``curve``
    (``(step, test accuracy)`` every ``eval_every`` steps) and the final ``accuracy``.
    """
    ids, mask, labels = train
    gen = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            for idx in torch.randperm(len(ids), generator=gen).split(batch_size):
                if len(idx) == batch_size:
                    yield ids[idx], mask[idx], labels[idx]

    def loss_fn(m, b):
        return m(b[0], attention_mask=b[1], labels=b[2])[1]

    history = fit(model, batches(), loss_fn, TrainConfig(steps=steps, lr=lr, eval_every=eval_every,
                                                          progress=progress),
                  evaluate=lambda m: accuracy(m, *test), device=device)
    return {"losses": history.losses, "curve": history.val_losses, "accuracy": history.val_losses[-1][1]}


def compare_finetuning(state: dict[str, torch.Tensor], config: BertConfig, tokenizer=None,
                       make_model: Callable[[BertConfig], torch.nn.Module] | None = None, seed: int = 0,
                       progress: bool = True, device: torch.device | None = None, **kwargs) -> dict[str, dict]:
    """Fine-tune the pre-trained encoder and the same architecture from scratch on the same budget.

    Only the first ``n_train`` labelled training sentences are used (default ``FINETUNE["n_train"]``:
    pre-training pays most when labels are few). ``make_model(config)`` builds the classifier
    (default: this package's, 2 classes). Both runs use
    the same seed for the heads' initialisation, the batches and dropout. Returns
    ``{"pre-trained": result, "from scratch": result}`` (see :func:`finetune`).
    """
    tokenizer = tokenizer or bert_data.load_tokenizer()
    make_model = make_model or (lambda c: BertForSequenceClassification(c, 2))
    train, test = polarity_tensors(tokenizer, kwargs.pop("max_len", FINETUNE["max_len"]))
    n_train = kwargs.pop("n_train", FINETUNE["n_train"])
    train = tuple(t[:n_train] for t in train)  # the first n_train labelled sentences of the shuffled split
    results = {}
    for name in ("pre-trained", "from scratch"):
        torch.manual_seed(seed)
        model = make_model(config)
        if name == "pre-trained":
            load_encoder(model, state)
        torch.manual_seed(seed)
        results[name] = finetune(model, train, test, seed=seed, progress=progress, device=device, **kwargs)
    return results


def _model_card(meta: dict) -> str:
    c, r, acc = meta["config"], meta["recipe"], meta["finetune_accuracy"]
    return f"""# Tiny BERT (course checkpoint `bert`)

A {c['n_layers']}-layer BERT encoder (hidden {c['d_model']}, {c['n_heads']} heads, FFN {c['d_ff']},
{c['max_len']} positions, WordPiece vocabulary of {c['vocab_size']} tokens in `bert.vocab.txt`),
{meta['parameters']:,} parameters, pre-trained by the course for chapter 5 and lab 5.

**Data.** The training part of sentence polarity v1.0 (Pang & Lee, CC BY 4.0): the texts only, never
the labels; the {bert_data.POLARITY_TEST} test sentences of `labsupport.bert.data.polarity_split()` are
held out. {meta['tokens_in_stream']:,} WordPiece tokens, seen about
{r['steps'] * r['batch_size'] * r['seq_len'] / meta['tokens_in_stream']:.0f} times with fresh masks.

**Recipe.** Masked LM only (no next-sentence prediction, as RoBERTa): 15 % of the tokens chosen,
80 % [MASK] / 10 % random / 10 % kept, with a fresh mask at every step (dynamic masking).
{r['steps']} steps of {r['batch_size']} windows of {r['seq_len']} tokens, AdamW (lr {r['lr']},
weight decay {r['weight_decay']}), linear warm-up over {int(r['warmup'] * 100)} % of the steps then
linear decay, dropout 0.1, seed {meta['seed']}, on the CPU in {meta['pretrain_seconds']} s.

**Results.** Final training MLM loss {meta['final_train_loss']} nats; held-out MLM loss (test
sentences) {meta['heldout_mlm_loss']} nats (uniform guessing: {math.log(c['vocab_size']):.2f}).
Fine-tuned on {meta['finetune']['n_train']:,} labelled polarity sentences ({meta['finetune']['steps']}
steps of {meta['finetune']['batch_size']}, lr {meta['finetune']['lr']}): test accuracy \
{acc['pre-trained']} pre-trained vs \
{acc['from scratch']}
from scratch with the same budget.
At this budget the model is still close to the unigram plateau (at most blanks it predicts frequent
tokens); a longer run (`RECIPE["steps"]` in `labsupport/bert/recipe.py`, on a GPU) is the large setting.

**Use.** `labsupport.bert.load_pretrained()` (config and verified state dict) or
`labsupport.bert.pretrained_mlm()`. Weights: MIT, like the course code.

**Rebuild.** `python -m labsupport.pretrain bert` (deterministic on the CPU; about
{meta['pretrain_seconds'] / 60:.0f} minutes on the machine that built this one).
"""
