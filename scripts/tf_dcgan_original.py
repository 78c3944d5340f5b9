"""The original: the TensorFlow DCGAN tutorial's MNIST model and ``train_step``, verbatim in substance.

https://www.tensorflow.org/tutorials/generative/dcgan (the code the seed quotes). Run by
``scripts/bench_train.py --original`` in a subprocess, so that TensorFlow's and PyTorch's thread pools never
share a process; it prints one JSON line with the measured images/s. Needs ``pip install tensorflow-cpu``
(the ``[tf]`` extra), never a dependency of the package.

    python scripts/tf_dcgan_original.py --batch-size 256 --warmup 3 --steps 20 --threads 2
    python scripts/tf_dcgan_original.py --precision bf16-mixed   # Keras' mixed_bfloat16 policy

``--precision`` takes the PyTorch rows' names: ``bf16-mixed`` sets Keras' ``mixed_bfloat16`` global policy
(layers compute in bfloat16, variables stay float32), the counterpart of Lightning's bf16 autocast, so that a
mixed-precision row is compared with the original in mixed precision too.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="intra/inter-op threads (0: TensorFlow's default)")
    p.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"])
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from tensorflow.keras import layers

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.random.set_seed(0)
    policy = {"bf16-mixed": "mixed_bfloat16", "16-mixed": "mixed_float16"}.get(args.precision)
    if policy:
        tf.keras.mixed_precision.set_global_policy(policy)

    def make_generator_model():
        model = tf.keras.Sequential()
        model.add(layers.Input(shape=(100,)))
        model.add(layers.Dense(7 * 7 * 256, use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Reshape((7, 7, 256)))
        model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(
            layers.Conv2DTranspose(
                1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"
            )
        )
        return model

    def make_discriminator_model():
        model = tf.keras.Sequential()
        model.add(layers.Input(shape=(28, 28, 1)))
        model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Flatten())
        model.add(layers.Dense(1))
        return model

    generator, discriminator = make_generator_model(), make_discriminator_model()
    cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = tf.keras.optimizers.Adam(1e-4)
    discriminator_optimizer = tf.keras.optimizers.Adam(1e-4)

    def discriminator_loss(real_output, fake_output):
        real_loss = cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(fake_output):
        return cross_entropy(tf.ones_like(fake_output), fake_output)

    batch = args.batch_size

    @tf.function
    def train_step(images):
        noise = tf.random.normal([batch, 100])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = generator_loss(fake_output)
            disc_loss = discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(
            zip(gradients_of_generator, generator.trainable_variables, strict=True)
        )
        discriminator_optimizer.apply_gradients(
            zip(gradients_of_discriminator, discriminator.trainable_variables, strict=True)
        )
        return gen_loss, disc_loss

    images = tf.random.uniform([batch, 28, 28, 1], -1.0, 1.0, seed=0)
    for _ in range(args.warmup):
        train_step(images)[0].numpy()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = train_step(images)
    loss[0].numpy()  # wait for the last step
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "images_per_s": args.steps * batch / seconds,
                "precision": args.precision,
                "tensorflow": tf.__version__,
                "keras": tf.keras.__version__ if hasattr(tf.keras, "__version__") else None,
            }
        )
    )


if __name__ == "__main__":
    main()
