"""The logits at position t are read at token t instead of token t+1, which behaves like scoring each
token with the prediction made *after* seeing it."""
# expect: sequence_logprobs_tests failed

# %% sequence_logprobs
def sequence_logprobs(logits, input_ids, prompt_lengths, attention_mask):
    logp = torch.log_softmax(logits, dim=-1)
    token_logp = logp.gather(-1, input_ids[:, :, None]).squeeze(-1)
    positions = torch.arange(input_ids.size(1))[None, :]
    mask = (positions >= prompt_lengths[:, None]) & attention_mask.bool()
    return (token_logp * mask).sum(-1)
