"""Dropout is applied to the [CLS] hidden state before the pooler instead of to the pooled vector before
the classifier: the pooler's output reaches the classifier undropped."""
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
        logits = self.classifier(torch.tanh(self.pooler(self.dropout(h[:, 0]))))
        return logits, (None if labels is None else F.cross_entropy(logits, labels))
