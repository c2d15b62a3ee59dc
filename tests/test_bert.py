"""labsupport.bert against Hugging Face's BERT classes; lab 5's checks accept it and reject broken variants."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labsupport.bert import (
    BertConfig,
    BertEmbeddings,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    attention_maps,
    mask_tokens,
)
from labsupport.bert.hf import from_hf_name, hf_config, load_into_hf, to_hf_name
from labsupport.checks import CheckFailed, lab05

CFG = BertConfig(vocab_size=45, d_model=24, n_layers=2, n_heads=3, d_ff=40, max_len=19, dropout=0.0)


def _batch(gen=None):
    gen = gen or torch.Generator().manual_seed(0)
    ids = torch.randint(5, 45, (3, 10), generator=gen)
    ids[:, 0] = 2
    ids[1, 6:] = 0
    ids[2, 3:] = 0
    return ids, (ids != 0).long()


def test_names_round_trip():
    for name in BertForMaskedLM(CFG).state_dict():
        assert from_hf_name(to_hf_name(name)) == name
    assert from_hf_name("cls.predictions.bias") == "decoder.bias"


def test_huggingface_to_ours():
    """HF → ours: a randomly initialised BertForMaskedLM loaded into the reference gives the same logits."""
    import transformers

    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(hf_config(CFG)).eval()
    ours = BertForMaskedLM(CFG).eval()
    state = {from_hf_name(k): v for k, v in hf.state_dict().items()
             if not k.endswith(("position_ids", "token_type_ids"))}
    ours.load_state_dict(state)
    ids, mask = _batch()
    torch.testing.assert_close(ours(ids, attention_mask=mask)[0], hf(input_ids=ids, attention_mask=mask).logits)


def test_ours_to_huggingface_classifier_and_gradients():
    import transformers

    torch.manual_seed(1)
    ours = BertForSequenceClassification(CFG, 3).double()
    hf = transformers.BertForSequenceClassification(hf_config(CFG, num_labels=3)).double()
    load_into_hf(hf, ours.state_dict())
    ids, mask = _batch()
    labels = torch.tensor([0, 2, 1])
    logits, loss = ours(ids, attention_mask=mask, labels=labels)
    out = hf(input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(logits, out.logits)
    loss.backward()
    out.loss.backward()
    theirs = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, theirs[to_hf_name(name)].grad)


def test_tied_decoder_and_padding_row():
    mlm = BertForMaskedLM(CFG)
    assert mlm.decoder.weight is mlm.bert.embeddings.token_embedding.weight
    ids, mask = _batch()
    labels = torch.where(mask.bool() & (ids > 4), ids, -100)
    mlm(ids, attention_mask=mask, labels=labels)[1].backward()
    emb = mlm.bert.embeddings.token_embedding.weight.grad
    assert emb.abs().sum() > 0
    mlm2 = BertForMaskedLM(CFG)
    mlm2(ids, attention_mask=mask)[0].sum().backward()
    assert torch.count_nonzero(mlm2.bert.embeddings.token_embedding.weight.grad[5:]) > 0


def test_masking_rules_and_statistics():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 60, (400, 50), generator=gen)
    ids[:, 0], ids[:, 40:] = 2, 0
    inputs, labels = mask_tokens(ids, [0, 1, 2, 3, 4], 4, 60, torch.Generator().manual_seed(1))
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, 40:].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    frac = chosen.float().sum() / (400 * 39)
    assert abs(frac - 0.15) < 0.01
    assert abs((inputs[chosen] == 4).float().mean() - 0.8) < 0.03
    assert not torch.isin(inputs[chosen & (inputs != 4)], torch.tensor([0, 1, 2, 3])).any()
    again = mask_tokens(ids, [0, 1, 2, 3, 4], 4, 60, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)


def test_attention_maps_are_distributions():
    bert = BertModel(CFG).eval()
    ids, mask = _batch()
    maps = attention_maps(bert, ids, attention_mask=mask)
    assert len(maps) == 2 and maps[0].shape == (3, 3, 10, 10)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(3, 3, 10))
    assert maps[0][2, :, :, 3:].abs().max() == 0  # padded keys get no weight


@pytest.mark.parametrize("check,impl", [("embeddings", BertEmbeddings), ("masking", mask_tokens),
                                        ("bert_model", BertModel), ("mlm", BertForMaskedLM),
                                        ("classifier", BertForSequenceClassification)])
def test_reference_passes_the_lab_checks(check, impl):
    getattr(lab05, f"{check}_examples")(impl)
    getattr(lab05, f"{check}_hidden")(impl)


# ---------------------------------------------------------------- broken variants the checks must reject
def _always_mask(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    inputs, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p)
    return torch.where(labels != -100, mask_id, inputs), labels


def _random_from_all(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    inputs, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p)
    swap = (labels != -100) & (inputs != mask_id) & (inputs != input_ids)
    return torch.where(swap, torch.randint(vocab_size, inputs.shape, generator=generator), inputs), labels


def _labels_everywhere(input_ids, special_ids, mask_id, vocab_size, generator, p=0.15):
    return mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, p)[0], input_ids.clone()


class _NoPositions(BertEmbeddings):
    def forward(self, input_ids, token_type_ids=None):
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        return self.dropout(self.norm(self.token_embedding(input_ids) + self.segment_embedding(types)))


class _Untied(BertForMaskedLM):
    def __init__(self, config):
        super().__init__(config)
        self.decoder.weight = nn.Parameter(self.decoder.weight.detach().clone())


class _MeanPool(BertForSequenceClassification):
    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        h = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(torch.tanh(self.pooler(h.mean(1)))))
        return logits, None if labels is None else F.cross_entropy(logits, labels)


@pytest.mark.parametrize("check,impl,message", [
    ("masking", _always_mask, "replaced by [MASK]"),
    ("masking", _random_from_all, "special token"),
    ("masking", _labels_everywhere, "has a label"),
    ("embeddings", _NoPositions, "values differ"),
    ("mlm", _Untied, "tied"),
    ("classifier", _MeanPool, "values differ"),
])
def test_checks_reject_broken_variants(check, impl, message):
    with pytest.raises(CheckFailed, match=message.replace("[", r"\[").replace("]", r"\]")):
        getattr(lab05, f"{check}_hidden")(impl)


# ---------------------------------------------------------------- the shipped checkpoint
def test_checkpoint_loads_and_predicts():
    from labsupport.bert import data as bert_data
    from labsupport.bert import load_pretrained, pretrained_mlm

    config, state = load_pretrained()
    assert config.vocab_size == len(bert_data.vocab_list())
    model = BertForSequenceClassification(config, 2)
    from labsupport.bert import load_encoder

    load_encoder(model, state)
    torch.testing.assert_close(model.bert.embeddings.token_embedding.weight,
                               state["bert.embeddings.token_embedding.weight"])
    mlm = pretrained_mlm()
    tok = bert_data.load_tokenizer()
    ids = torch.tensor([tok.encode("the movie is [MASK] .").ids])
    with torch.no_grad():
        probs = mlm(ids)[0][0, 4].softmax(-1)
    assert probs[:5].sum() < 0.05  # special tokens are (almost) never predicted


@pytest.mark.slow
def test_alternative_solution_gets_full_marks():
    """The alternative answers (loops, explicit ops) are graded in the sandbox like a submission."""
    from autograder.course import source_notebook
    from autograder.grade import grade_notebook
    from autograder.mutants import alternatives_of, mutant_notebook

    lab = "lab05_bert"
    for alt in alternatives_of(lab):
        result = grade_notebook(lab, mutant_notebook(source_notebook(lab), alt), alt.name)
        assert result.score == result.max_score > 0, [(p.grade_id, p.status, p.reason) for p in result.parts]
