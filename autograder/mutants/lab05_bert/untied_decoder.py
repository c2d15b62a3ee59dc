"""The decoder has its own weight matrix instead of sharing the token-embedding table: same logits with
copied weights, but V·d extra parameters, and each matrix gets only half of the gradient."""
# expect: mlm_head_tests failed

# %% mlm_head
class BertForMaskedLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config.d_model
        self.bert = BertModel(config)
        self.transform = nn.Linear(d, d)
        self.transform_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(d, config.vocab_size)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        h = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.decoder(self.transform_norm(F.gelu(self.transform(h))))
        if labels is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
