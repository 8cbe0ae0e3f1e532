package org.footfall.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Assume;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * The Java core against the Python runtime's golden vectors: log-mel within 1e-4; the alignment,
 * the committed logits, the step events, the counts and a runner's figures exactly.
 */
@RunWith(Parameterized.class)
public class GoldenTest {
    /** The tolerance for the Java log-mel against edge/frontend.py. */
    static final double LOG_MEL_TOL = 1e-4;
    /**
     * Event times: the requirement is 1e-9 s; the counter computes them with the same float64
     * operations in the same order as Python, so they are held bit-equal.
     */
    static final double EVENT_TOL_S = 0.0;

    @Parameters(name = "{0}")
    public static List<Object[]> folders() {
        return Golden.folders();
    }

    private final File dir;
    private Golden g;

    public GoldenTest(File dir) {
        this.dir = dir;
    }

    @Before
    public void load() throws Exception {
        if (dir == null) {
            if (Golden.required()) fail("no golden folder: pass -D" + Golden.PROPERTY + "=DIR (python -m edge.golden DIR)");
            Assume.assumeTrue("no golden folder given (-D" + Golden.PROPERTY + "=DIR); skipped", false);
        }
        g = new Golden(dir);
    }

    // ---- contracts ----

    @Test
    public void frontEndConstantsAreThePythonOnes() {
        Map<String, Object> py = g.map("frontend");
        Map<String, Object> java = ModelSpec.runtimeFrontend();
        assertEquals("front-end keys", py.keySet(), java.keySet());
        for (String k : java.keySet()) {
            Object a = py.get(k);
            Object b = java.get(k);
            if (a instanceof Number) assertEquals(k, ((Number) a).doubleValue(), ((Number) b).doubleValue(), 0.0);
            else assertEquals(k, a, b);
        }
        Map<String, Object> al = g.map("alignment");
        assertEquals(Counter.DENSITY_STRIDE, Golden.integer(al.get("density_stride")));
        assertEquals(Counter.DENSITY_FPS, Golden.integer(al.get("density_fps")));
        assertEquals((double) Counter.PAD_LOG_MEL, Golden.number(al.get("pad_log_mel")), 0.0);
        assertEquals((double) Counter.SILENT_LOG_MEL, Golden.number(al.get("silent_log_mel")), 0.0);
        assertEquals((double) Counter.SILENT_LOGIT, Golden.number(al.get("silent_logit")), 0.0);
        assertEquals(ModelSpec.OUTPUT_KIND, g.index.get("output"));
        assertEquals(ModelSpec.SCHEMA, Golden.integer(g.index.get("card_schema")));
    }

    /** The counter's constants and what it derives from its parameters, equal to edge.counter's. */
    static void checkCounterConstants(String at, Map<String, Object> py, CounterParams p) {
        assertEquals(at + " threshold_logit", Golden.number(py.get("threshold_logit")), p.thresholdLogit(), 0.0);
        assertEquals(at + " start_cost", Golden.number(py.get("start_cost")), p.startCost(), 0.0);
        assertEquals(at + " stop_cost", Golden.number(py.get("stop_cost")), p.stopCost(), 0.0);
        assertEquals(at + " bias", Golden.number(py.get("bias")), p.bias(), 0.0);
        assertEquals(at + " period_min", Golden.integer(py.get("period_min")), p.periodMin());
        assertEquals(at + " period_max", Golden.integer(py.get("period_max")), p.periodMax());
        assertEquals(at + " n_tempi", Golden.integer(py.get("n_tempi")), p.nTempi());
        assertEquals(at + " lag_frames", Golden.integer(py.get("lag_frames")), p.lagFrames());
        assertEquals(at + " track_fps", Golden.integer(py.get("track_fps")), CounterParams.FPS);
        Counter c = new Counter(p);
        assertEquals(at + " block", Golden.integer(py.get("block")), c.block());
        assertEquals(at + " keep", Golden.integer(py.get("keep")), c.keep());
        assertEquals(at + " bin_lag_frames", Golden.integer(py.get("bin_lag_frames")), c.binLagFrames());
        List<?> costs = (List<?>) py.get("tempo_costs");
        assertEquals(at + " tempo_costs rows", p.nTempi(), costs.size());
        for (int i = 0; i < costs.size(); i++) {
            double[] row = Golden.numbers(costs.get(i));
            int j0 = Math.max(0, i - Counter.TEMPO_STEP);
            assertEquals(at + " tempo_costs row " + i, Math.min(p.nTempi(), i + Counter.TEMPO_STEP + 1) - j0, row.length);
            for (int k = 0; k < row.length; k++) {
                assertEquals(at + " tempo cost " + i + " -> " + (j0 + k), row[k], c.tempoCost(i, j0 + k), 0.0);
            }
        }
        assertEquals(at + " track_rate", Golden.integer(py.get("track_rate")), Counter.TRACK_RATE);
        assertEquals(at + " tempo_step", Golden.integer(py.get("tempo_step")), Counter.TEMPO_STEP);
        assertEquals(at + " min_gap", Golden.integer(py.get("min_gap")), Counter.MIN_GAP);
        assertEquals(at + " retro_s", Golden.number(py.get("retro_s")), Counter.RETRO_S, 0.0);
        assertEquals(at + " cadence_min_s", Golden.number(py.get("cadence_min_s")), Counter.CADENCE_MIN_S, 0.0);
        assertEquals(at + " active_min_spm", Golden.number(py.get("active_min_spm")), Counter.ACTIVE_MIN_SPM, 0.0);
        assertEquals(at + " active_bin_s", Golden.number(py.get("active_bin_s")), Counter.ACTIVE_BIN_S, 0.0);
        assertEquals(at + " fps", Golden.integer(py.get("fps")), Counter.DENSITY_FPS);
    }

    @Test
    public void theCardIsReadAsEdgeReadsIt() {
        ModelSpec spec = ModelSpec.fromCard(g.card);
        assertEquals(g.params, spec.counter); // the card's counter, defaults filled in as CounterParams.from_dict does
        Map<String, Object> py = g.map("counter");
        Map<String, Object> java = spec.counter.toMap();
        assertEquals("counter parameter names", new ArrayList<>(py.keySet()), new ArrayList<>(java.keySet()));
        for (String k : java.keySet()) { // JSON integers read as Long, Java's train_steps is an Integer
            Object a = py.get(k);
            Object b = java.get(k);
            if (a instanceof Number) assertEquals(k, ((Number) a).doubleValue(), ((Number) b).doubleValue(), 0.0);
            else assertEquals(k, a, b);
        }
        assertEquals(ModelSpec.SCHEMA, spec.schema);
        assertEquals(g.windowFrames, spec.windowFrames);
        // a streaming model's state, in the card's order, and its one schedule (the golden run's)
        List<?> state = g.card.get("state") == null ? new ArrayList<>() : (List<?>) g.card.get("state");
        assertEquals("state tensors", state.size(), spec.state.size());
        for (int i = 0; i < state.size(); i++) {
            @SuppressWarnings("unchecked")
            Map<String, Object> s = (Map<String, Object>) state.get(i);
            assertEquals("state " + i + " name", s.get("name"), spec.state.get(i).name);
            assertArrayEquals("state " + i + " shape", Golden.ints(s.get("shape")), spec.state.get(i).shape);
        }
        assertEquals(g.stateful, spec.isStreaming());
        for (boolean lowLatency : new boolean[] {false, true}) {
            Alignment a = spec.alignment(lowLatency);
            assertEquals(g.stateful, a.stateful);
            if (g.stateful) {
                assertEquals(g.windowFrames, a.hopFrames);
                assertEquals(Alignment.CENTRE, a.lookaheadFrames);
            }
        }
        assertTrue(spec.problems(spec.artifact, null).toString(), spec.problems(spec.artifact, null).isEmpty());
        checkCounterConstants(g.toString(), g.map("counter_constants"), spec.counter);
    }

    // ---- front end ----

    private static double maxAbsDiff(float[] a, float[] b) {
        assertEquals("lengths", a.length, b.length);
        double max = 0;
        for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs((double) a[i] - b[i]));
        return max;
    }

    @Test
    public void offlineLogMelMatches() {
        float[][] frames = new LogMel(g.filterbank()).compute(g.pcm);
        assertEquals(g.nFrames, frames.length);
        double diff = maxAbsDiff(LogMel.toBandMajor(frames), g.logMel);
        System.out.printf("[%s] log-mel max |java - python| = %.3g over %d frames%n", g, diff, frames.length);
        assertTrue("log-mel max abs diff " + diff + " > " + LOG_MEL_TOL, diff <= LOG_MEL_TOL);
    }

    @Test
    public void streamingLogMelMatchesInAnyBlocks() {
        StreamingLogMel s = new StreamingLogMel(g.filterbank());
        List<float[]> got = new ArrayList<>();
        Random rng = new Random(7);
        int pos = 0;
        while (pos < g.pcm.length) {
            int len = Math.min(g.pcm.length - pos, 1 + rng.nextInt(900));
            s.push(g.pcm, pos, len, (f, i) -> got.add(f.clone()));
            pos += len;
        }
        assertEquals(g.nFrames, got.size());
        double diff = maxAbsDiff(LogMel.toBandMajor(got.toArray(new float[0][])), g.logMel);
        assertTrue("streamed log-mel max abs diff " + diff, diff <= LOG_MEL_TOL);
    }

    // ---- alignment and counter ----

    @Test
    public void alignmentPlanIsThePythonOne() {
        Alignment a = g.alignment();
        Map<String, Object> al = g.map("alignment");
        assertEquals("stateful", al.get("stateful"), a.stateful);
        assertEquals(Golden.integer(al.get("commit_offset_frames")), a.commitOffsetD() * a.stride);
        assertEquals(Golden.integer(al.get("latency_frames")), a.latencyFrames());
        List<Alignment.Window> expected = new ArrayList<>();
        for (Map<String, Object> u : g.updates) {
            expected.add(new Alignment.Window(Golden.integer(u.get("start_frame")), Golden.integer(u.get("lo")), Golden.integer(u.get("hi"))));
        }
        assertEquals(expected, a.plan(g.nFrames));
        int committed = 0;
        for (Alignment.Window w : expected) committed += w.hi - w.lo;
        assertEquals("every output frame committed once", g.nFrames / Counter.DENSITY_STRIDE, committed);
    }

    /** The figures {@code edge.golden._figures} wrote (those present in {@code py}) against the Java counter's. */
    static void checkFigures(String at, Map<String, Object> py, Counter c) {
        if (py.containsKey("steps")) assertEquals(at + " steps", Golden.number(py.get("steps")), c.steps(), 0.0);
        if (py.containsKey("n_events")) assertEquals(at + " n_events", Golden.integer(py.get("n_events")), c.nEvents());
        assertEquals(at + " t_final", Golden.number(py.get("t_final")), c.tFinal(), 0.0);
        if (py.containsKey("t_decided")) assertEquals(at + " t_decided", Golden.number(py.get("t_decided")), c.tDecided(), 0.0);
        assertEquals(at + " cadence", Golden.number(py.get("cadence_spm")), c.cadenceSpm(), 0.0);
        assertEquals(at + " cadence_state", py.get("cadence_state"), c.cadenceState().label);
        if (py.containsKey("active_frames")) {
            assertEquals(at + " active_frames", Golden.integer(py.get("active_frames")), c.activeFrames());
            assertEquals(at + " active_steps", Golden.integer(py.get("active_steps")), c.activeSteps());
            assertEquals(at + " mean_cadence", Golden.optional(py.get("mean_cadence_spm")), c.meanCadence());
        }
        assertEquals(at + " active_s", Golden.number(py.get("active_s")), c.activeSeconds(), 0.0);
        assertEquals(at + " peak_cadence", Golden.optional(py.get("peak_cadence_spm")), c.peakCadence());
    }

    @Test
    public void counterOnGoldenLogitsIsExact() {
        Counter c = new Counter(g.params);
        List<Float> committed = new ArrayList<>();
        List<double[]> events = new ArrayList<>();
        for (int i = 0; i < g.updates.size(); i++) {
            Map<String, Object> u = g.updates.get(i);
            int lo = Golden.integer(u.get("lo"));
            int hi = Golden.integer(u.get("hi"));
            float[] d = g.logits(i);
            for (int k = lo; k < hi; k++) committed.add(d[k]);
            events.add(c.commit(d, lo, hi));
            Map<String, Object> expected = u;
            if (i == g.updates.size() - 1) {  // the last update carries the final count: before the flush, less its flushed steps
                expected = new java.util.LinkedHashMap<>(u);
                expected.put("steps", Golden.number(u.get("steps")) - Golden.numbers(g.totals.get("flushed_events")).length);
            }
            checkFigures(g + " window " + i, expected, c);
        }
        double[] flushed = c.flush();
        assertArrayEquals(g + " flushed events", Golden.numbers(g.totals.get("flushed_events")), flushed, EVENT_TOL_S);
        // the flushed events join the last window's events, as the streaming engine returns them
        int last = events.size() - 1;
        events.set(last, concat(events.get(last), flushed));
        for (int i = 0; i < events.size(); i++) {
            assertArrayEquals(g + " window " + i + " events", g.events(i), events.get(i), EVENT_TOL_S);
        }
        float[] flat = new float[committed.size()];
        for (int i = 0; i < flat.length; i++) flat[i] = committed.get(i);
        assertArrayEquals("committed logits", g.committedLogits, flat, 0f);
        checkFigures(g + " totals", g.totals, c);
        assertTrue(g + ": the golden run counts steps", c.nEvents() > 0 || g.nFrames < 3 * FrontEnd.FRAMES_PER_SECOND);
    }

    /** Logit tracks made to reach every rule of the counter, with several parameter sets, in random chunks. */
    @Test
    public void counterCasesAreExact() {
        assertTrue(g + ": no counter cases", g.counterCases.size() >= 8);
        for (Map<String, Object> cs : g.counterCases) {
            @SuppressWarnings("unchecked")
            CounterParams p = CounterParams.fromMap((Map<String, Object>) cs.get("params"));
            String at = g + " case " + cs.get("name") + " " + p.toMap();
            @SuppressWarnings("unchecked")
            Map<String, Object> constants = (Map<String, Object>) cs.get("constants");
            checkCounterConstants(at, constants, p);
            float[] logits = Golden.floats(cs.get("logits"));
            Counter c = new Counter(p);
            int pos = 0;
            int k = 0;
            for (Object o : (List<?>) cs.get("chunks")) {
                @SuppressWarnings("unchecked")
                Map<String, Object> chunk = (Map<String, Object>) o;
                int n = Golden.integer(chunk.get("n"));
                double[] ev = c.commit(logits, pos, pos + n);
                pos += n;
                String where = at + " chunk " + k++ + " (frame " + pos + ")";
                assertArrayEquals(where + " events", Golden.numbers(chunk.get("events")), ev, EVENT_TOL_S);
                checkFigures(where, chunk, c);
            }
            assertEquals(at + " frames", logits.length, pos);
            assertArrayEquals(at + " flushed", Golden.numbers(cs.get("flushed")), c.flush(), EVENT_TOL_S);
            @SuppressWarnings("unchecked")
            Map<String, Object> totals = (Map<String, Object>) cs.get("totals");
            checkFigures(at + " totals", totals, c);
        }
    }

    static double[] concat(double[] a, double[] b) {
        double[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    // ---- the whole engine: PCM in, counts out ----

    /**
     * Replays the golden logits in window order and checks each model input on the way. Like a
     * streaming model, it gives them only from its initial state: {@link #reset()} goes back to the
     * first window.
     */
    private final class ReplayModel implements OnsetModel {
        int calls = 0;
        int resets = 0;
        double maxInputDiff = 0;

        @Override
        public void reset() {
            calls = 0;
            resets++;
        }

        @Override
        public float[] run(float[] logMel) {
            int w = g.windowFrames * FrontEnd.N_MELS;
            assertTrue("more windows than the golden run: " + (calls + 1), calls < g.updates.size());
            float[] expected = Arrays.copyOfRange(g.windowInput, calls * w, (calls + 1) * w);
            maxInputDiff = Math.max(maxInputDiff, maxAbsDiff(logMel, expected));
            return g.logits(calls++);
        }
    }

    private void checkEngine(int[] blocks, String how) throws Exception {
        checkEngine(new ReplayModel(), blocks, how);
    }

    private void checkEngine(ReplayModel model, int[] blocks, String how) throws Exception {
        int resets = model.resets;
        StreamCounter sc = new StreamCounter(model, g.filterbank(), g.alignment(), g.params);
        assertEquals(g + " blocks " + how + ": the model is reset once, at the start of the stream", resets + 1, model.resets);
        assertEquals(Golden.integer(g.map("alignment").get("ring_capacity_frames")), sc.ringCapacity());
        List<Update> ups = new ArrayList<>();
        int pos = 0;
        int b = 0;
        while (pos < g.pcm.length) {
            int len = Math.min(g.pcm.length - pos, blocks[b++ % blocks.length]);
            ups.addAll(sc.push(g.pcm, pos, len));
            pos += len;
        }
        ups.addAll(sc.finish());
        assertTrue(sc.finish().isEmpty());
        String at = g + " blocks " + how;
        // A flush-only update (no model run: steps the counter still held at the end of the
        // stream) is folded into the last window's events, as the golden index records them.
        while (ups.size() > g.updates.size() && ups.get(ups.size() - 1).lo == ups.get(ups.size() - 1).hi) {
            Update extra = ups.remove(ups.size() - 1);
            Update prev = ups.remove(ups.size() - 1);
            ups.add(new Update(prev.window, prev.startFrame, prev.lo, prev.hi, prev.t, prev.tFinal, extra.steps,
                    prev.cadenceSpm, prev.latencyMs, concat(prev.events, extra.events), prev.tail));
        }
        assertEquals(at + " windows", g.updates.size(), ups.size());
        assertEquals(at + " model calls", g.updates.size(), model.calls);
        assertTrue(at + " model input max abs diff " + model.maxInputDiff, model.maxInputDiff <= LOG_MEL_TOL);
        for (int i = 0; i < ups.size(); i++) {
            Update u = ups.get(i);
            Map<String, Object> e = g.updates.get(i);
            String w = at + " window " + i;
            assertEquals(w, Golden.integer(e.get("window")), u.window);
            assertEquals(w + " start", Golden.integer(e.get("start_frame")), u.startFrame);
            assertEquals(w + " lo", Golden.integer(e.get("lo")), u.lo);
            assertEquals(w + " hi", Golden.integer(e.get("hi")), u.hi);
            assertEquals(w + " tail", e.get("tail"), u.tail);
            assertEquals(w + " t", Golden.number(e.get("t")), u.t, 0.0);
            assertEquals(w + " t_final", Golden.number(e.get("t_final")), u.tFinal, 0.0);
            assertEquals(w + " steps", Golden.number(e.get("steps")), u.steps, 0.0);
            assertArrayEquals(w + " events", g.events(i), u.events, EVENT_TOL_S);
            assertEquals(w + " cadence", Golden.number(e.get("cadence_spm")), u.cadenceSpm, 0.0);
        }
        Map<String, Object> t = g.totals;
        assertEquals(at + " total steps", Golden.number(t.get("steps")), sc.steps(), 0.0);
        assertEquals(at + " events", Golden.integer(t.get("n_events")), sc.nEvents());
        assertEquals(at + " active_s", Golden.number(t.get("active_s")), sc.activeSeconds(), 0.0);
        assertEquals(at + " mean cadence", Golden.optional(t.get("mean_cadence_spm")), sc.meanCadenceSpm());
        assertEquals(at + " peak cadence", Golden.optional(t.get("peak_cadence_spm")), sc.peakCadenceSpm());
        assertEquals(at + " cadence state", t.get("cadence_state"), sc.cadenceState().label);
        assertEquals(at + " frames", g.nFrames, sc.framesSeen());
    }

    @Test
    public void engineInHopSizedBlocks() throws Exception {
        checkEngine(new int[] {FrontEnd.HOP_LENGTH}, "160");
    }

    @Test
    public void engineInOneBlock() throws Exception {
        checkEngine(new int[] {Integer.MAX_VALUE}, "whole");
    }

    @Test
    public void engineInIrregularBlocks() throws Exception {
        Random rng = new Random(11);
        int[] blocks = new int[97];
        for (int i = 0; i < blocks.length; i++) blocks[i] = 1 + rng.nextInt(3000);
        blocks[3] = 1;
        blocks[5] = 0 + 7;
        checkEngine(blocks, "irregular");
    }

    @Test
    public void engineInAudioRecordSizedBlocks() throws Exception {
        checkEngine(new int[] {1024}, "1024"); // a typical AudioRecord read
    }

    /** One model for two streams (Stop, then Start): each stream starts from the model's initial state. */
    @Test
    public void engineResetsTheModelForEachStream() throws Exception {
        ReplayModel model = new ReplayModel();
        checkEngine(model, new int[] {1024}, "1024, first stream");
        checkEngine(model, new int[] {FrontEnd.HOP_LENGTH}, "160, second stream on the same model");
        assertEquals(2, model.resets);
    }

    /** Digital silence is not run: the model is not called, its frames read SILENT_LOGIT, and the
     *  sound after it runs as if the stream began there (the model's state waited). */
    @Test
    public void engineDoesNotRunTheModelOnDigitalSilence() throws Exception {
        final List<float[]> seen = new ArrayList<>();
        OnsetModel counting = new OnsetModel() {
            @Override
            public void reset() {}

            @Override
            public float[] run(float[] logMel) {
                seen.add(logMel.clone());
                return new float[g.alignment().windowD()];
            }
        };
        StreamCounter sc = new StreamCounter(counting, g.filterbank(), g.alignment(), g.params);
        int silentSamples = 3 * FrontEnd.SAMPLE_RATE;
        List<Update> ups = sc.push(new float[silentSamples]);
        assertFalse(ups.isEmpty());
        assertEquals("digital silence runs no window", 0, seen.size());
        ups.addAll(sc.push(g.pcm, 0, g.pcm.length));
        ups.addAll(sc.finish());
        assertFalse("the sound after the silence runs", seen.isEmpty());
        int w = g.alignment().windowFrames;
        int levelled = 0;
        for (float[] x : seen) {
            float first = Float.NEGATIVE_INFINITY;
            for (int m = 0; m < FrontEnd.N_MELS; m++) first = Math.max(first, x[m * w]);
            // a window run starts with sound: silence before it took the level of the window's sound
            assertTrue("a window run starts with sound: " + first, first > Counter.SILENT_LOG_MEL);
            boolean flat = true;
            for (int m = 0; m < FrontEnd.N_MELS; m++) flat &= x[m * w] == x[m * w + 1] && x[m * w + 1] == x[m * w + 2];
            if (flat) levelled++;
        }
        assertTrue("the windows across the end of the silence were levelled", levelled > 0);
        assertTrue(Counter.SILENT_LOG_MEL > Counter.PAD_LOG_MEL);
    }

    @Test
    public void engineRefusesPushAfterFinish() throws Exception {
        StreamCounter sc = new StreamCounter(new ReplayModel(), g.filterbank(), g.alignment(), g.params);
        sc.finish();
        try {
            sc.push(new float[10]);
            fail("push after finish must throw");
        } catch (IllegalStateException expected) {
            assertFalse(expected.getMessage().isEmpty());
        }
    }
}
