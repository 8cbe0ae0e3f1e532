package org.footfall.demo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.util.Arrays;
import org.footfall.core.OnsetModel;
import org.footfall.core.FrontEnd;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/**
 * A .tflite step-onset model run by LiteRT's Interpreter on the CPU. Handles int8 models whose
 * input/output tensors are themselves int8 by (de)quantizing with the tensors' own parameters.
 */
final class LiteRtModel implements OnsetModel {
    private final Interpreter interpreter;
    private final ByteBuffer input;
    private final ByteBuffer output;
    private final DataType inType;
    private final DataType outType;
    private final float inScale;
    private final int inZero;
    private final float outScale;
    private final int outZero;
    private final int inLength;
    private final int outLength;

    LiteRtModel(MappedByteBuffer modelBuffer, int windowFrames, int densityStride, int threads) {
        Interpreter.Options options = new Interpreter.Options();
        options.setNumThreads(threads);
        interpreter = new Interpreter(modelBuffer, options);
        Tensor in = interpreter.getInputTensor(0);
        Tensor out = interpreter.getOutputTensor(0);
        int[] expected = {1, 1, FrontEnd.N_MELS, windowFrames};
        if (!Arrays.equals(in.shape(), expected)) {
            throw new IllegalArgumentException("tflite input shape " + Arrays.toString(in.shape())
                    + " != card's " + Arrays.toString(expected));
        }
        inLength = FrontEnd.N_MELS * windowFrames;
        outLength = windowFrames / densityStride;
        if (out.numElements() != outLength) {
            throw new IllegalArgumentException("tflite output has " + out.numElements() + " values, card says " + outLength);
        }
        inType = in.dataType();
        outType = out.dataType();
        inScale = in.quantizationParams().getScale();
        inZero = in.quantizationParams().getZeroPoint();
        outScale = out.quantizationParams().getScale();
        outZero = out.quantizationParams().getZeroPoint();
        input = ByteBuffer.allocateDirect(in.numBytes()).order(ByteOrder.nativeOrder());
        output = ByteBuffer.allocateDirect(out.numBytes()).order(ByteOrder.nativeOrder());
    }

    @Override
    public float[] run(float[] logMel) {
        if (logMel.length != inLength) {
            throw new IllegalArgumentException("window has " + logMel.length + " values, model takes " + inLength);
        }
        input.rewind();
        if (inType == DataType.FLOAT32) {
            input.asFloatBuffer().put(logMel);
        } else if (inType == DataType.INT8) {
            for (float v : logMel) {
                int q = Math.round(v / inScale) + inZero;
                input.put((byte) Math.max(-128, Math.min(127, q)));
            }
        } else {
            throw new IllegalStateException("unsupported tflite input type " + inType);
        }
        input.rewind();
        output.rewind();
        interpreter.run(input, output);
        output.rewind();
        float[] logits = new float[outLength];
        if (outType == DataType.FLOAT32) {
            output.asFloatBuffer().get(logits);
        } else if (outType == DataType.INT8) {
            for (int i = 0; i < outLength; i++) logits[i] = (output.get() - outZero) * outScale;
        } else {
            throw new IllegalStateException("unsupported tflite output type " + outType);
        }
        return logits;
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
