"""attention_mask is ignored: real tokens attend to the [PAD] positions, so a sentence's vectors depend on
how much padding the batch added. Both heads built on this encoder inherit the bug."""
# expect: bert_model_tests failed, mlm_head_tests failed, cls_classifier_tests failed

# %% bert_model
class BertModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList([TransformerEncoderBlock(config.block_config()) for _ in range(config.n_layers)])

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        h = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            h = layer(h)
        return h
