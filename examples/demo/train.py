"""Train and export Rampart's embedded demo model (run once; the outputs are committed).

Iris, Pipeline(StandardScaler, LogisticRegression): four features, three classes, and the skl2onnx `Scaler`
op that stock tract cannot load — so the demo exercises Rampart's own translator. Writes:
  demo.onnx          the model
  demo_train.csv     the training rows (header, last column `label`), input of `rampart profile`
  request.json       a confident, in-distribution request
  uncertain.json     an in-distribution request between versicolor and virginica (below the demo's gate)
Then: cargo run --release -- profile --data examples/demo/demo_train.csv --label-column label \
        --model examples/demo/demo.onnx --labels setosa,versicolor,virginica \
        --out examples/demo/demo.baseline.json

Needs: pip install scikit-learn skl2onnx onnxruntime
"""
import csv
import json
import os

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
iris = load_iris()
X = iris.data.astype(np.float32)
y = iris.target
names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
labels = list(iris.target_names)

model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000, C=1.0))])
model.fit(X, y)
onx = to_onnx(model, X[:1], options={id(model.steps[-1][1]): {"zipmap": False}}, target_opset=17)
with open(os.path.join(HERE, "demo.onnx"), "wb") as f:
    f.write(onx.SerializeToString())

with open(os.path.join(HERE, "demo_train.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(names + ["label"])
    for row, t in zip(X, y):
        w.writerow([f"{v:.1f}" for v in row] + [labels[t]])

sess = ort.InferenceSession(os.path.join(HERE, "demo.onnx"))
confident = [5.1, 3.5, 1.4, 0.2]
uncertain = [6.0, 2.7, 5.0, 1.6]
for name, row in (("request.json", confident), ("uncertain.json", uncertain)):
    probs = sess.run(None, {"X": np.array([row], dtype=np.float32)})[1][0]
    print(name, row, [round(float(p), 3) for p in probs])
    with open(os.path.join(HERE, name), "w") as f:
        json.dump({"features": row}, f)
        f.write("\n")
