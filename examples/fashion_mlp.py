"""A KerasTuner hypermodel exactly as one writes it for KerasTuner: 1-3 dense layers, each with
its own units and dropout, and a log-uniform learning rate. tunefleet runs it unchanged
(examples/fashion_mnist_hypermodel.yaml); so would ``keras_tuner.RandomSearch(build_model, ...)``.
"""

import keras


def build_model(hp):
    model = keras.Sequential()  # no Input, as KerasTuner's guide writes it: built at its first batch
    model.add(keras.layers.Flatten())
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 32, 512, step=32), activation="relu"))
        model.add(keras.layers.Dropout(hp.Float(f"dropout_{i}", 0.0, 0.5, step=0.1)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
