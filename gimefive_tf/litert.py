"""LiteRT (ai-edge-litert), the runtime phones use, as every part of the project loads it: the
face detector, the exported .tflite files and the on-device bundle. TensorFlow's own
tf.lite.Interpreter is deprecated in its favour; nothing here imports TensorFlow."""


def load_interpreter(path, threads=2):
    """A LiteRT interpreter of the .tflite file at `path`, its tensors allocated; a file that
    is no model LiteRT can run is a GiMeFiveError (one clear line from a command)."""
    from ai_edge_litert.interpreter import Interpreter

    from gimefive_tf.errors import GiMeFiveError
    from gimefive_tf.quiet import native_stderr_silenced

    with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate on fd 2
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
        except ValueError:
            raise GiMeFiveError(f"{path} is not a .tflite model LiteRT can run") from None
    return interpreter


class TFLiteModel:
    """A classifier .tflite run by LiteRT: one image -> its outputs by name ("probabilities",
    and "heatmap" where the model explains too)."""

    def __init__(self, path):
        self.interpreter = load_interpreter(path)
        self.input = self.interpreter.get_input_details()[0]
        # the converter names outputs Identity, Identity_1...: tell them apart by shape
        self.outputs = {("probabilities" if len(d["shape"]) == 2 else "heatmap"): d
                        for d in self.interpreter.get_output_details()}

    def __call__(self, image):
        self.interpreter.set_tensor(self.input["index"], image[None].astype(self.input["dtype"]))
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(d["index"])[0]
                for name, d in self.outputs.items()}
