package org.footfall.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * One folder of golden vectors written by {@code python -m edge.golden DIR} (format
 * {@link #FORMAT}; the table of files is in {@code edge/golden.py}'s docstring).
 *
 * <p>Tests find the folders in the system property {@code footfall.golden} (several separated by
 * the platform's path separator). Without it they are skipped, unless
 * {@code footfall.golden.required=true} (how {@code tests/test_android_core.py} runs them).
 */
final class Golden {
    static final String PROPERTY = "footfall.golden";
    static final String REQUIRED = "footfall.golden.required";
    static final String FORMAT = "footfall-golden/2";

    final File dir;
    final Map<String, Object> index;
    final float[] pcm;
    final float[] logMel; // (64, nFrames) mel-major
    final float[] windowInput; // (nWindows, 64, W)
    final float[] windowLogits; // (nWindows, W / 4)
    final float[] committedLogits; // (nFrames / 4,)
    final float[] melFilters; // (64, 257)
    final CounterParams params; // the card's counter parameters
    final Map<String, Object> card; // the model card, as its JSON file holds it
    final Map<String, Object> totals; // the counter after the end of the stream
    final int nFrames;
    final int windowFrames;
    final int hopFrames;
    final int lookaheadFrames; // Alignment.CENTRE when the golden run committed each window's centre hop
    final boolean stateful; // a streaming model's run: packets taken once, the tail never reaching back
    final List<Map<String, Object>> updates;
    final List<Map<String, Object>> counterCases; // counter_cases.json: logit tracks through edge.counter.Counter

    /** The schedule the golden run used. */
    Alignment alignment() {
        return new Alignment(windowFrames, hopFrames, Counter.DENSITY_STRIDE, lookaheadFrames, stateful);
    }

    /** The golden folders named by the system property; [null] when none (tests then skip or fail). */
    static List<Object[]> folders() {
        String prop = System.getProperty(PROPERTY, "");
        List<Object[]> out = new ArrayList<>();
        for (String p : prop.split(File.pathSeparator)) {
            if (!p.trim().isEmpty()) out.add(new Object[] {new File(p.trim())});
        }
        if (out.isEmpty()) out.add(new Object[] {null});
        return out;
    }

    static boolean required() {
        return Boolean.parseBoolean(System.getProperty(REQUIRED, "false"));
    }

    @SuppressWarnings("unchecked")
    Golden(File dir) throws IOException {
        this.dir = dir;
        File idx = new File(dir, "index.json");
        if (!idx.isFile()) {
            throw new IOException(idx + ": no golden index (write one with: python -m edge.golden " + dir + ")");
        }
        index = (Map<String, Object>) parse(idx);
        if (!FORMAT.equals(index.get("format"))) {
            throw new IOException(idx + ": golden format " + index.get("format") + ", these tests read " + FORMAT
                    + " (write the folder again with: python -m edge.golden " + dir + ")");
        }
        Map<String, Object> align = map("alignment");
        windowFrames = integer(align.get("window_frames"));
        hopFrames = integer(align.get("hop_frames"));
        lookaheadFrames = align.get("lookahead_frames") == null ? Alignment.CENTRE : integer(align.get("lookahead_frames"));
        stateful = Boolean.TRUE.equals(align.get("stateful"));
        nFrames = integer(index.get("n_frames"));
        pcm = f32("pcm.f32", integer(index.get("n_samples")));
        logMel = f32("logmel.f32", FrontEnd.N_MELS, nFrames);
        updates = (List<Map<String, Object>>) (List<?>) index.get("updates");
        int nWindows = updates.size();
        windowInput = f32("window_input.f32", nWindows, FrontEnd.N_MELS, windowFrames);
        windowLogits = f32("window_logits.f32", nWindows, windowFrames / Counter.DENSITY_STRIDE);
        committedLogits = f32("committed_logits.f32", nFrames / Counter.DENSITY_STRIDE);
        melFilters = f32("mel_filters.f32", FrontEnd.N_MELS, FrontEnd.N_FREQS);
        params = CounterParams.fromMap(map("counter"));
        card = map("card");
        totals = map("totals");
        Map<String, Object> cases = (Map<String, Object>) parse(new File(dir, "counter_cases.json"));
        if (!FORMAT.equals(cases.get("format"))) throw new IOException(dir + "/counter_cases.json: format " + cases.get("format"));
        counterCases = (List<Map<String, Object>>) (List<?>) cases.get("cases");
    }

    private static Object parse(File f) throws IOException {
        return MiniJson.parse(new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8));
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> map(String key) {
        return (Map<String, Object>) index.get(key);
    }

    static int integer(Object o) {
        return ((Number) o).intValue();
    }

    static double number(Object o) {
        return ((Number) o).doubleValue();
    }

    /** A JSON number or null, as the counter reports an optional figure. */
    static Double optional(Object o) {
        return o == null ? null : ((Number) o).doubleValue();
    }

    static double[] numbers(Object list) {
        List<?> l = (List<?>) list;
        double[] out = new double[l.size()];
        for (int k = 0; k < out.length; k++) out[k] = number(l.get(k));
        return out;
    }

    static int[] ints(Object list) {
        List<?> l = (List<?>) list;
        int[] out = new int[l.size()];
        for (int k = 0; k < out.length; k++) out[k] = integer(l.get(k));
        return out;
    }

    static float[] floats(Object list) {
        List<?> l = (List<?>) list;
        float[] out = new float[l.size()];
        for (int k = 0; k < out.length; k++) {
            double v = number(l.get(k));
            out[k] = (float) v;
            if (out[k] != v) throw new IllegalArgumentException("logit " + v + " is not a float32 value");
        }
        return out;
    }

    /** Read a raw float32 file and check it against the index's shape and the expected one. */
    @SuppressWarnings("unchecked")
    private float[] f32(String name, int... expectedShape) throws IOException {
        Map<String, Object> files = map("files");
        Map<String, Object> meta = files == null ? null : (Map<String, Object>) files.get(name);
        if (meta == null) throw new IOException(dir + ": index.json does not list " + name);
        if (!"little".equals(meta.get("byte_order")) || !"float32".equals(meta.get("dtype"))) {
            throw new IOException(name + ": expected little-endian float32, index says " + meta);
        }
        List<Object> shapeList = (List<Object>) meta.get("shape");
        int[] shape = new int[shapeList.size()];
        for (int i = 0; i < shape.length; i++) shape[i] = integer(shapeList.get(i));
        if (!Arrays.equals(shape, expectedShape)) {
            throw new IOException(name + ": index shape " + Arrays.toString(shape) + ", expected " + Arrays.toString(expectedShape));
        }
        float[] data;
        try (InputStream in = new FileInputStream(new File(dir, name))) {
            data = Npy.readRawFloat32(in);
        }
        long n = 1;
        for (int d : shape) n *= d;
        if (data.length != n) throw new IOException(name + ": " + data.length + " values, shape needs " + n);
        return data;
    }

    MelFilterbank filterbank() {
        return MelFilterbank.fromFlat(melFilters);
    }

    /** Step-onset logits of golden window i (a copy). */
    float[] logits(int i) {
        int wd = windowFrames / Counter.DENSITY_STRIDE;
        return Arrays.copyOfRange(windowLogits, i * wd, (i + 1) * wd);
    }

    double[] events(int i) {
        return numbers(updates.get(i).get("events"));
    }

    @Override
    public String toString() {
        return dir.getName();
    }
}
