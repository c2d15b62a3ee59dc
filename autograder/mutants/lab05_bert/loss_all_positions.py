"""The MLM loss runs over every position (unlabelled positions are scored against the visible token)
instead of only the positions whose label is not −100."""
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
        self.decoder.weight = self.bert.embeddings.token_embedding.weight

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        h = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.decoder(self.transform_norm(F.gelu(self.transform(h))))
        if labels is None:
            return logits, None
        targets = torch.where(labels == -100, input_ids, labels)
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())
