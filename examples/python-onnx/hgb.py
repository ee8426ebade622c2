"""Fit scikit-learn's HistGradientBoostingClassifier and save it as ONNX.

Reads the training rows mlcycle split off (an Arrow table), logs the 5-fold
cross-validated accuracy for the experiments view, fits on every training
row and writes out/model.onnx with mlcycle.save_model, which converts the
estimator with skl2onnx and records its columns, classes and params.
"""
import mlcycle
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

p = mlcycle.params()
df = mlcycle.read_table(mlcycle.input("train"))
target = df.attrs["target"]
X, y = df.drop(columns=[target]), df[target]

model = HistGradientBoostingClassifier(
    learning_rate=p.hgb.learning_rate,
    max_iter=p.hgb.max_iter,
    max_leaf_nodes=p.hgb.max_leaf_nodes,
    random_state=p.seed,
)
folds = StratifiedKFold(n_splits=p.hgb.cv_folds, shuffle=True, random_state=p.seed)
scores = cross_val_score(model, X, y, cv=folds, scoring="accuracy")
for fold, score in enumerate(scores):
    mlcycle.log_metric("cv_accuracy", float(score), step=fold)
print(f"{p.hgb.cv_folds}-fold CV accuracy {scores.mean():.4f} ± {scores.std():.4f}")

model.fit(X, y)
path = mlcycle.save_model(model, target=target, rows=len(df))
print(f"saved {path.name}: {len(X.columns)} features, classes {list(model.classes_)}")
