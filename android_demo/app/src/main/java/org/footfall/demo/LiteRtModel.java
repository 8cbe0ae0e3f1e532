package org.footfall.demo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.footfall.core.FrontEnd;
import org.footfall.core.ModelSpec;
import org.footfall.core.OnsetModel;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/**
 * A .tflite step-onset model run by LiteRT's Interpreter on the CPU. Handles int8 models whose
 * input/output tensors are themselves int8 by (de)quantizing with the tensors' own parameters.
 *
 * <p>A streaming model (the card's {@code state}) takes the packet and one tensor per state buffer
 * and gives the logits and the new state, in the same order; it runs through its one signature,
 * whose names ({@code args_<i>}, {@code output_<i>}) give that order (the interpreter's own tensor
 * order follows the graph), as {@code edge.backends.LiteRTBackend} does. The state is kept here as
 * float32, from zeros at load and at {@link #reset()}.
 */
final class LiteRtModel implements OnsetModel {
    private static final Pattern TRAILING_NUMBER = Pattern.compile("(\\d+)$");

    /** One input or output tensor and its direct buffer; int8 is (de)quantized with the tensor's parameters. */
    private static final class Io {
        final int[] shape;
        final int length;
        final DataType type;
        final float scale;
        final int zero;
        final ByteBuffer buffer;

        Io(Tensor t, String what) {
            shape = t.shape();
            length = t.numElements();
            type = t.dataType();
            if (type != DataType.FLOAT32 && type != DataType.INT8) {
                throw new IllegalArgumentException("unsupported tflite " + what + " type " + type);
            }
            scale = t.quantizationParams().getScale();
            zero = t.quantizationParams().getZeroPoint();
            buffer = ByteBuffer.allocateDirect(t.numBytes()).order(ByteOrder.nativeOrder());
        }

        void put(float[] v) {
            buffer.rewind();
            if (type == DataType.FLOAT32) {
                buffer.asFloatBuffer().put(v);
            } else {
                for (float x : v) {
                    int q = Math.round(x / scale) + zero;
                    buffer.put((byte) Math.max(-128, Math.min(127, q)));
                }
            }
            buffer.rewind();
        }

        void get(float[] v) {
            buffer.rewind();
            if (type == DataType.FLOAT32) {
                buffer.asFloatBuffer().get(v);
            } else {
                for (int i = 0; i < v.length; i++) v[i] = (buffer.get() - zero) * scale;
            }
            buffer.rewind();
        }
    }

    private final Interpreter interpreter;
    private final Io[] ins; // the window (or packet), then the state buffers
    private final Io[] outs; // the logits, then the new state buffers
    private final String signature; // a streaming model's signature; null: a windowed model, run by index
    private final Map<String, Object> signatureInputs = new HashMap<>();
    private final Map<String, Object> signatureOutputs = new HashMap<>();
    private final float[][] state;
    private final int inLength;
    private final int outLength;

    /** A windowed model. */
    LiteRtModel(MappedByteBuffer modelBuffer, int windowFrames, int densityStride, int threads) {
        this(modelBuffer, windowFrames, densityStride, threads, Collections.<ModelSpec.State>emptyList());
    }

    /** {@code state}: the card's state tensors (empty: a windowed model). */
    LiteRtModel(MappedByteBuffer modelBuffer, int windowFrames, int densityStride, int threads, List<ModelSpec.State> state) {
        Interpreter.Options options = new Interpreter.Options();
        options.setNumThreads(threads);
        interpreter = new Interpreter(modelBuffer, options);
        int n = 1 + state.size();
        ins = new Io[n];
        outs = new Io[n];
        if (state.isEmpty()) {
            signature = null;
            ins[0] = new Io(interpreter.getInputTensor(0), "input");
            outs[0] = new Io(interpreter.getOutputTensor(0), "output");
        } else {
            String[] keys = interpreter.getSignatureKeys();
            if (keys.length != 1) {
                throw new IllegalArgumentException("tflite: expected one signature to order its inputs by, got " + keys.length);
            }
            signature = keys[0];
            String[] inNames = ordered(interpreter.getSignatureInputs(signature));
            String[] outNames = ordered(interpreter.getSignatureOutputs(signature));
            if (inNames.length != n || outNames.length != n) {
                throw new IllegalArgumentException("tflite has " + inNames.length + " inputs and " + outNames.length
                        + " outputs; the card's " + state.size() + " state tensors need " + n + " of each");
            }
            for (int i = 0; i < n; i++) {
                ins[i] = new Io(interpreter.getInputTensorFromSignature(inNames[i], signature), "input " + inNames[i]);
                outs[i] = new Io(interpreter.getOutputTensorFromSignature(outNames[i], signature), "output " + outNames[i]);
                signatureInputs.put(inNames[i], ins[i].buffer);
                signatureOutputs.put(outNames[i], outs[i].buffer);
            }
        }
        int[] expected = {1, 1, FrontEnd.N_MELS, windowFrames};
        if (!Arrays.equals(ins[0].shape, expected)) {
            throw new IllegalArgumentException("tflite input shape " + Arrays.toString(ins[0].shape)
                    + " != card's " + Arrays.toString(expected));
        }
        inLength = FrontEnd.N_MELS * windowFrames;
        outLength = windowFrames / densityStride;
        if (outs[0].length != outLength) {
            throw new IllegalArgumentException("tflite output has " + outs[0].length + " values, card says " + outLength);
        }
        this.state = new float[state.size()][];
        for (int i = 0; i < state.size(); i++) {
            ModelSpec.State s = state.get(i);
            if (!Arrays.equals(ins[i + 1].shape, s.shape) || !Arrays.equals(outs[i + 1].shape, s.shape)) {
                throw new IllegalArgumentException("tflite state " + s.name + ": input " + Arrays.toString(ins[i + 1].shape)
                        + ", output " + Arrays.toString(outs[i + 1].shape) + ", card says " + Arrays.toString(s.shape));
            }
            this.state[i] = new float[s.size()];
        }
    }

    /** Signature names in the order of the converted function's arguments (results): by their trailing number. */
    private static String[] ordered(String[] names) {
        Integer[] pos = new Integer[names.length];
        for (int i = 0; i < names.length; i++) {
            Matcher m = TRAILING_NUMBER.matcher(names[i]);
            if (!m.find()) return names; // names without one keep the signature's order
            pos[i] = Integer.parseInt(m.group(1));
        }
        String[] out = names.clone();
        Integer[] order = new Integer[names.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Integer.compare(pos[a], pos[b]));
        for (int i = 0; i < order.length; i++) out[i] = names[order[i]];
        return out;
    }

    @Override
    public void reset() {
        for (float[] s : state) Arrays.fill(s, 0f);
    }

    @Override
    public float[] run(float[] logMel) {
        if (logMel.length != inLength) {
            throw new IllegalArgumentException("window has " + logMel.length + " values, model takes " + inLength);
        }
        ins[0].put(logMel);
        for (int i = 0; i < state.length; i++) ins[i + 1].put(state[i]);
        for (Io o : outs) o.buffer.rewind();
        if (signature == null) {
            interpreter.run(ins[0].buffer, outs[0].buffer);
        } else {
            interpreter.runSignature(signatureInputs, signatureOutputs, signature);
        }
        float[] logits = new float[outLength];
        outs[0].get(logits);
        for (int i = 0; i < state.length; i++) outs[i + 1].get(state[i]);
        return logits;
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
