package org.footfall.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the runtime needs from a model card (contract 4; {@code edge/card.py}), and the same
 * checks {@code edge.card.load_card} and {@code verify_card} make before a model may run. JSON
 * parsing stays in the app (org.json): {@link #fromCard} takes the card as plain maps, lists,
 * numbers, strings and booleans, so this class has no Android imports.
 */
public final class ModelSpec {
    /** The card schema this runtime reads ({@code edge.contract.CARD_SCHEMA_VERSION}). */
    public static final int SCHEMA = 2;
    /** What the network gives per output frame ({@code edge.contract.OUTPUT_KIND}). */
    public static final String OUTPUT_KIND = "step_onset_logit";
    /** Why a schema-1 card is refused ({@code edge.card.SCHEMA_1}). */
    public static final String SCHEMA_1 = "a schema-1 card: its model gives a step density, which this runtime no longer "
            + "counts (schema " + SCHEMA + " models give step-onset logits); train and export the model again";

    /** One state tensor of a streaming model (the card's {@code state}: {@code {name, shape}}). */
    public static final class State {
        public final String name;
        public final int[] shape;

        public State(String name, int[] shape) {
            this.name = name;
            this.shape = shape.clone();
        }

        /** Values in the tensor. */
        public int size() {
            int n = 1;
            for (int d : shape) n *= d;
            return n;
        }

        @Override
        public String toString() {
            return name + java.util.Arrays.toString(shape);
        }
    }

    public final String artifact;
    public final String format; // pte | tflite | onnx
    public final String precision;
    public final String sha256;
    public final int windowFrames;
    public final int hopFrames;
    public final double densityFps;
    public final int[] inputShape;
    public final Map<String, Object> frontend;
    /** The card's {@code schema} (1 for a card without one). */
    public final int schema;
    /** The card's {@code output}: what the network gives per output frame. */
    public final String output;
    /** The card's {@code counter} parameters (the defaults for an empty one). */
    public final CounterParams counter;
    /** The card's low-latency schedule ({@code low_latency}): its hop, or 0 when it has none. */
    public final int lowLatencyHopFrames;
    /** ... and its lookahead in front-end frames ({@link Alignment#CENTRE}: the centre hop). */
    public final int lowLatencyLookaheadFrames;
    /**
     * A streaming model's state tensors, in the artifact's input order after the packet (and its
     * output order after the logits); empty for a windowed model.
     */
    public final List<State> state;

    /** A current card (schema {@value #SCHEMA}, step-onset logits) with the counter's defaults and no low-latency schedule. */
    public ModelSpec(String artifact, String format, String precision, String sha256, int windowFrames,
            int hopFrames, double densityFps, int[] inputShape, Map<String, Object> frontend) {
        this(artifact, format, precision, sha256, windowFrames, hopFrames, densityFps, inputShape, frontend,
                SCHEMA, OUTPUT_KIND, CounterParams.DEFAULTS, 0, Alignment.CENTRE);
    }

    /** Every field of a windowed model ({@code lowLatencyHopFrames} 0: no low-latency schedule). */
    public ModelSpec(String artifact, String format, String precision, String sha256, int windowFrames,
            int hopFrames, double densityFps, int[] inputShape, Map<String, Object> frontend, int schema,
            String output, CounterParams counter, int lowLatencyHopFrames, int lowLatencyLookaheadFrames) {
        this(artifact, format, precision, sha256, windowFrames, hopFrames, densityFps, inputShape, frontend, schema,
                output, counter, lowLatencyHopFrames, lowLatencyLookaheadFrames, Collections.<State>emptyList());
    }

    /** Every field; {@code state} non-empty: a streaming model. */
    public ModelSpec(String artifact, String format, String precision, String sha256, int windowFrames,
            int hopFrames, double densityFps, int[] inputShape, Map<String, Object> frontend, int schema,
            String output, CounterParams counter, int lowLatencyHopFrames, int lowLatencyLookaheadFrames,
            List<State> state) {
        this.artifact = artifact;
        this.format = format;
        this.precision = precision;
        this.sha256 = sha256;
        this.windowFrames = windowFrames;
        this.hopFrames = hopFrames;
        this.densityFps = densityFps;
        this.inputShape = inputShape.clone();
        this.frontend = new LinkedHashMap<>(frontend);
        this.schema = schema;
        this.output = output;
        this.counter = counter;
        this.lowLatencyHopFrames = lowLatencyHopFrames;
        this.lowLatencyLookaheadFrames = lowLatencyLookaheadFrames;
        this.state = Collections.unmodifiableList(new ArrayList<>(state));
    }

    /** Null when this runtime reads cards of {@code schema}, else the one-line reason it refuses them. */
    public static String schemaProblem(int schema) {
        if (schema == 1) return SCHEMA_1;
        if (schema != SCHEMA) return "card schema " + schema + "; this runtime reads " + SCHEMA;
        return null;
    }

    /**
     * A card as parsed JSON: objects as {@code Map}, arrays as {@code List}, numbers as
     * {@code Number}, JSON null as null. A card of another schema is refused first, with one
     * message ({@link #schemaProblem}); a missing or malformed field, a bad {@code counter},
     * {@code low_latency} or {@code state} is an {@link IllegalArgumentException} naming it. Whether the model may
     * run with its file is {@link #problems}.
     */
    public static ModelSpec fromCard(Map<String, ?> card) {
        int schema = card.get("schema") == null ? 1 : whole(card, "schema"); // cards before schema 2 had none
        String problem = schemaProblem(schema);
        if (problem != null) throw new IllegalArgumentException(problem);
        Object shape = card.get("input_shape");
        if (!(shape instanceof List)) throw new IllegalArgumentException("card input_shape must be a list, got " + shape);
        List<?> shapeList = (List<?>) shape;
        int[] inputShape = new int[shapeList.size()];
        for (int i = 0; i < inputShape.length; i++) {
            Object v = shapeList.get(i);
            if (!(v instanceof Number)) throw new IllegalArgumentException("card input_shape " + shape + " must hold numbers");
            inputShape[i] = ((Number) v).intValue();
        }
        Map<String, Object> frontend = new LinkedHashMap<>();
        Object fe = card.get("frontend");
        if (fe instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) fe).entrySet()) frontend.put(String.valueOf(e.getKey()), e.getValue());
        }
        Object output = card.containsKey("output") ? card.get("output") : OUTPUT_KIND;
        CounterParams counter;
        try {
            counter = CounterParams.fromMap(object(card, "counter"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad counter: " + e.getMessage(), e);
        }
        int llHop = 0;
        int llLookahead = Alignment.CENTRE;
        Map<String, ?> ll = object(card, "low_latency");
        if (ll != null && !ll.isEmpty()) {
            try {
                llHop = whole(ll, "hop_frames");
                if (llHop <= 0) throw new IllegalArgumentException("hop_frames " + llHop + " must be > 0");
                if (ll.get("lookahead_frames") != null) llLookahead = whole(ll, "lookahead_frames");
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("bad low_latency: " + e.getMessage(), e);
            }
        }
        List<State> state = states(card.get("state"));
        return new ModelSpec(
                text(card, "artifact"),
                text(card, "format"),
                card.get("precision") == null ? "?" : String.valueOf(card.get("precision")),
                text(card, "sha256"),
                whole(card, "window_frames"),
                whole(card, "hop_frames"),
                number(card, "density_fps"),
                inputShape,
                frontend,
                schema,
                String.valueOf(output),
                counter,
                llHop,
                llLookahead,
                state);
    }

    /** The card's {@code state} ({@code edge.card.ModelCard.state_shapes}): null or a list of {name, shape}. */
    private static List<State> states(Object v) {
        List<State> out = new ArrayList<>();
        if (v == null) return out;
        String bad = "bad state (expected a list of {name, shape}): ";
        if (!(v instanceof List)) throw new IllegalArgumentException(bad + v);
        for (Object o : (List<?>) v) {
            Object name = o instanceof Map ? ((Map<?, ?>) o).get("name") : null;
            Object shape = o instanceof Map ? ((Map<?, ?>) o).get("shape") : null;
            if (name == null || !(shape instanceof List)) throw new IllegalArgumentException(bad + o);
            List<?> dims = (List<?>) shape;
            int[] s = new int[dims.size()];
            for (int i = 0; i < s.length; i++) {
                Object d = dims.get(i);
                if (!(d instanceof Number) || ((Number) d).doubleValue() != ((Number) d).intValue()) {
                    throw new IllegalArgumentException(bad + o);
                }
                s[i] = ((Number) d).intValue();
            }
            out.add(new State(String.valueOf(name), s));
        }
        return out;
    }

    private static Object field(Map<String, ?> m, String k) {
        Object v = m.get(k);
        if (v == null) throw new IllegalArgumentException("card has no '" + k + "'");
        return v;
    }

    private static String text(Map<String, ?> m, String k) {
        Object v = field(m, k);
        if (!(v instanceof String)) throw new IllegalArgumentException(k + " must be a string, got " + v);
        return (String) v;
    }

    private static double number(Map<String, ?> m, String k) {
        Object v = field(m, k);
        if (!(v instanceof Number)) throw new IllegalArgumentException(k + " must be a number, got " + v);
        return ((Number) v).doubleValue();
    }

    private static int whole(Map<String, ?> m, String k) {
        double v = number(m, k);
        if (v != Math.rint(v) || Math.abs(v) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(k + " must be a whole number, got " + m.get(k));
        }
        return (int) v;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, ?> object(Map<String, ?> m, String k) {
        Object v = m.get(k);
        if (v == null) return null;
        if (!(v instanceof Map)) throw new IllegalArgumentException(k + " must be an object, got " + v);
        return (Map<String, ?>) v;
    }

    public boolean hasLowLatency() {
        return lowLatencyHopFrames > 0;
    }

    /** A model that carries state between calls: each call takes the next packet once. */
    public boolean isStreaming() {
        return !state.isEmpty();
    }

    /**
     * The windows the counter runs, as {@code edge.card.ModelCard.alignment}: by default a window
     * every {@code hop_frames} with its centre hop committed; with {@code lowLatency}, the card's
     * low-latency schedule when it has one. A streaming model has one schedule, whatever
     * {@code lowLatency}: its packets, each once ({@link Alignment#stateful}).
     */
    public Alignment alignment(boolean lowLatency) {
        if (isStreaming()) {
            return new Alignment(windowFrames, hopFrames, densityStride(), Alignment.CENTRE, true);
        }
        if (lowLatency && hasLowLatency()) {
            return new Alignment(windowFrames, lowLatencyHopFrames, densityStride(), lowLatencyLookaheadFrames);
        }
        return new Alignment(windowFrames, hopFrames, densityStride());
    }

    /** Front-end frames per output frame (4 for 100 -> 25 frames/s). */
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
        String schemaProblem = schemaProblem(schema);
        if (schemaProblem != null) { // nothing else in such a card means what this runtime expects
            out.add(schemaProblem);
            return out;
        }
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
        if (!OUTPUT_KIND.equals(output)) {
            out.add("card output '" + output + "'; this runtime counts '" + OUTPUT_KIND + "'");
        }
        if (densityFps != Counter.DENSITY_FPS) {
            out.add("card density_fps " + densityFps + " != this runtime's " + Counter.DENSITY_FPS + " frames/s");
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
        if (isStreaming()) {
            List<String> shapes = new ArrayList<>();
            boolean bad = false;
            for (State s : state) {
                shapes.add(java.util.Arrays.toString(s.shape));
                bad |= s.shape.length < 1;
                for (int d : s.shape) bad |= d < 1;
            }
            if (bad) out.add("bad state shapes " + shapes);
            if (hopFrames != windowFrames) {
                out.add("a streaming model takes each packet once: hop_frames " + hopFrames + " must equal window_frames "
                        + windowFrames);
            }
            if (hasLowLatency()) out.add("a streaming model has one schedule (no low_latency)");
        } else if (hasLowLatency() && stride > 0) {
            try {
                alignment(true);
            } catch (IllegalArgumentException e) {
                out.add("bad low_latency: " + e.getMessage());
            }
        }
        return out;
    }
}
