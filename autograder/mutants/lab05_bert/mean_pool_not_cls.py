"""The classifier averages the hidden states of all positions instead of reading the [CLS] vector."""
# expect: cls_classifier_tests failed

# %% cls_classifier
class BertForSequenceClassification(nn.Module):
    def __init__(self, config, n_classes):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.pooler = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.d_model, n_classes)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        h = self.bert(input_ids, token_type_ids, attention_mask)
        pooled = torch.tanh(self.pooler(h.mean(1)))
        logits = self.classifier(self.dropout(pooled))
        return logits, (None if labels is None else F.cross_entropy(logits, labels))
