package org.footfall.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the runtime needs from a model card (contract 4; {@code edge/card.py}), and the same
 * checks {@code edge.card.verify_card} makes before a model may run. JSON parsing stays in the
 * app (org.json); this class takes plain values so it has no Android imports.
 */
public final class ModelSpec {
    public final String artifact;
    public final String format; // pte | tflite | onnx
    public final String precision;
    public final String sha256;
    public final int windowFrames;
    public final int hopFrames;
    public final double densityFps;
    public final int[] inputShape;
    public final Map<String, Object> frontend;
    /** The card's rate calibration, or null when it has none. */
    public final RateCalibration calibration;
    /** The card's low-latency schedule ({@code low_latency}): its hop, or 0 when it has none. */
    public final int lowLatencyHopFrames;
    /** ... and its lookahead in front-end frames. */
    public final int lowLatencyLookaheadFrames;

    public ModelSpec(String artifact, String format, String precision, String sha256, int windowFrames,
            int hopFrames, double densityFps, int[] inputShape, Map<String, Object> frontend) {
        this(artifact, format, precision, sha256, windowFrames, hopFrames, densityFps, inputShape, frontend, null);
    }

    public ModelSpec(String artifact, String format, String precision, String sha256, int windowFrames,
            int hopFrames, double densityFps, int[] inputShape, Map<String, Object> frontend,
            RateCalibration calibration) {
        this(artifact, format, precision, sha256, windowFrames, hopFrames, densityFps, inputShape, frontend, calibration, 0, 0);
    }

    /** With the card's low-latency schedule ({@code lowLatencyHopFrames} 0: none). */
    public ModelSpec(String artifact, String format, String precision, String sha256, int windowFrames,
            int hopFrames, double densityFps, int[] inputShape, Map<String, Object> frontend,
            RateCalibration calibration, int lowLatencyHopFrames, int lowLatencyLookaheadFrames) {
        this.lowLatencyHopFrames = lowLatencyHopFrames;
        this.lowLatencyLookaheadFrames = lowLatencyLookaheadFrames;
        this.calibration = calibration;
        this.artifact = artifact;
        this.format = format;
        this.precision = precision;
        this.sha256 = sha256;
        this.windowFrames = windowFrames;
        this.hopFrames = hopFrames;
        this.densityFps = densityFps;
        this.inputShape = inputShape.clone();
        this.frontend = new LinkedHashMap<>(frontend);
    }

    public boolean hasLowLatency() {
        return lowLatencyHopFrames > 0;
    }

    /**
     * The windows the counter runs, as {@code edge.card.ModelCard.alignment}: by default a window
     * every {@code hop_frames} with its centre hop committed; with {@code lowLatency}, the card's
     * low-latency schedule when it has one.
     */
    public Alignment alignment(boolean lowLatency) {
        if (lowLatency && hasLowLatency()) {
            return new Alignment(windowFrames, lowLatencyHopFrames, densityStride(), lowLatencyLookaheadFrames);
        }
        return new Alignment(windowFrames, hopFrames, densityStride());
    }

    /** Front-end frames per density frame (4 for 100 -> 25 frames/s). */
    public int densityStride() {
        return (int) Math.round(FrontEnd.FRAMES_PER_SECOND / densityFps);
    }

    /** The front-end description this runtime computes, as {@code edge.frontend.frontend_params()}. */
    public static Map<String, Object> runtimeFrontend() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("sample_rate", FrontEnd.SAMPLE_RATE);
        p.put("n_fft", FrontEnd.N_FFT);
        p.put("hop_length", FrontEnd.HOP_LENGTH);
        p.put("n_mels", FrontEnd.N_MELS);
        p.put("f_min", FrontEnd.F_MIN);
        p.put("f_max", FrontEnd.F_MAX);
        p.put("log_eps", FrontEnd.LOG_EPS);
        p.put("window", "hann_periodic");
        p.put("framing", "causal_left_pad");
        return p;
    }

    private static boolean same(Object a, Object b) {
        if (a instanceof Number && b instanceof Number) {
            return ((Number) a).doubleValue() == ((Number) b).doubleValue();
        }
        return a != null && a.equals(b);
    }

    /**
     * Problems that make this card unusable with {@code fileName} (its sha256 {@code fileSha256},
     * or null to skip that check); empty when it may run.
     */
    public List<String> problems(String fileName, String fileSha256) {
        List<String> out = new ArrayList<>();
        if (!artifact.equals(fileName)) {
            out.add("card is for '" + artifact + "', not '" + fileName + "'");
        }
        String ext = fileName.contains(".") ? fileName.substring(fileName.lastIndexOf('.') + 1) : "";
        if (!format.equals(ext)) {
            out.add("card says format '" + format + "', file is '" + ext + "'");
        }
        if (fileSha256 != null && !fileSha256.equalsIgnoreCase(sha256)) {
            out.add("sha256 mismatch: the artifact was changed or corrupted");
        }
        for (Map.Entry<String, Object> e : runtimeFrontend().entrySet()) {
            Object theirs = frontend.get(e.getKey());
            if (!same(theirs, e.getValue())) {
                out.add("front end differs: " + e.getKey() + " card " + theirs + ", runtime " + e.getValue());
            }
        }
        int[] expected = {1, 1, FrontEnd.N_MELS, windowFrames};
        if (!java.util.Arrays.equals(inputShape, expected)) {
            out.add("input_shape " + java.util.Arrays.toString(inputShape) + " != " + java.util.Arrays.toString(expected));
        }
        if (!(hopFrames > 0 && hopFrames <= windowFrames)) {
            out.add("hop_frames " + hopFrames + " not in (0, " + windowFrames + "]");
        }
        int stride = densityStride();
        if (stride <= 0 || windowFrames % stride != 0 || hopFrames % stride != 0) {
            out.add("window " + windowFrames + " and hop " + hopFrames + " must be multiples of the density stride " + stride);
        }
        if (hasLowLatency() && stride > 0) {
            try {
                alignment(true);
            } catch (IllegalArgumentException e) {
                out.add("bad low_latency: " + e.getMessage());
            }
        }
        return out;
    }
}
