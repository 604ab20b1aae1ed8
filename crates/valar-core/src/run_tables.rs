/// The columns of a run's `metrics.csv`, in order: one row per epoch, a dimension's
/// cells empty when it was not trained. `*_baseline_rmse` is the validation RMSE of
/// predicting the training split's mean for every face (the mean-prediction baseline; its
/// CCC is 0 by definition), repeated on every row so each row can be read alone.
pub const METRICS_COLUMNS: [&str; 15] = [
    "epoch",
    "train_loss",
    "val_loss",
    "valence_rmse",
    "valence_pcc",
    "valence_ccc",
    "valence_sagr",
    "valence_baseline_rmse",
    "arousal_rmse",
    "arousal_pcc",
    "arousal_ccc",
    "arousal_sagr",
    "arousal_baseline_rmse",
    "lr",
    "seconds",
];

/// The columns of `predictions.csv` (a run's, and `valar evaluate`'s), in order.
pub const PREDICTIONS_COLUMNS: [&str; 6] = [
    "index",
    "path",
    "valence_true",
    "valence_pred",
    "arousal_true",
    "arousal_pred",
];
