"""The prompt is masked but the padding is not: the log-probabilities of the (arbitrary) padding tokens
are added to the completion's, which behaves like ignoring attention_mask."""
# expect: sequence_logprobs_tests failed

# %% sequence_logprobs
def sequence_logprobs(logits, input_ids, prompt_lengths, attention_mask):
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    token_logp = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    positions = torch.arange(input_ids.size(1))[None, :]
    mask = positions >= prompt_lengths[:, None]
    return (token_logp * mask[:, 1:]).sum(-1)
