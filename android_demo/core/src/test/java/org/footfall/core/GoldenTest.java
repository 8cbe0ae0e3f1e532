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
 * The Java core against the Python runtime's golden vectors: log-mel within 1e-4, the alignment,
 * the committed density, the counts and the step events exactly.
 */
@RunWith(Parameterized.class)
public class GoldenTest {
    /** The tolerance for the Java log-mel against edge/frontend.py. */
    static final double LOG_MEL_TOL = 1e-4;
    /** Cadence is a 250-frame sum; numpy sums pairwise, Java in order: equal to rounding. */
    static final double CADENCE_REL_TOL = 1e-12;

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
        assertEquals(Counter.CADENCE_WINDOW_S, Golden.number(al.get("cadence_window_s")), 0.0);
        assertEquals((double) Counter.PAD_LOG_MEL, Golden.number(al.get("pad_log_mel")), 0.0);
    }

    @Test
    public void melFiltersAreTheShippedOnes() throws Exception {
        MelFilterbank golden = g.filterbank();
        MelFilterbank computed = MelFilterbank.compute();
        String npy = System.getProperty("footfall.melFilters", "");
        MelFilterbank shipped = null;
        if (!npy.isEmpty()) {
            try (InputStream in = new FileInputStream(npy)) {
                shipped = MelFilterbank.fromNpy(in);
            }
        }
        for (int m = 0; m < FrontEnd.N_MELS; m++) {
            for (int k = 0; k < FrontEnd.N_FREQS; k++) {
                assertEquals(golden.weight(m, k), computed.weight(m, k), 1e-8);
                if (shipped != null) assertEquals(golden.weight(m, k), shipped.weight(m, k), 0f);
            }
        }
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
        assertEquals(Golden.integer(al.get("commit_offset_frames")), a.commitOffsetD() * a.stride);
        assertEquals(Golden.integer(al.get("latency_frames")), a.latencyFrames());
        List<Alignment.Window> expected = new ArrayList<>();
        for (Map<String, Object> u : g.updates) {
            expected.add(new Alignment.Window(Golden.integer(u.get("start_frame")), Golden.integer(u.get("lo")), Golden.integer(u.get("hi"))));
        }
        assertEquals(expected, a.plan(g.nFrames));
        int committed = 0;
        for (Alignment.Window w : expected) committed += w.hi - w.lo;
        assertEquals("every density frame committed once", g.nFrames / Counter.DENSITY_STRIDE, committed);
    }

    @Test
    public void counterOnGoldenDensityIsExact() {
        Counter c = new Counter(g.calibration);
        List<Float> committed = new ArrayList<>();
        List<double[]> events = new ArrayList<>();
        for (int i = 0; i < g.updates.size(); i++) {
            Map<String, Object> u = g.updates.get(i);
            int lo = Golden.integer(u.get("lo"));
            int hi = Golden.integer(u.get("hi"));
            float[] d = g.density(i);
            for (int k = lo; k < hi; k++) committed.add(d[k]);
            events.add(c.commit(d, lo, hi));
            String at = g + " window " + i;
            assertEquals(at + " steps", Golden.number(u.get("steps")), c.steps(), 0.0);
            assertEquals(at + " t_final", Golden.number(u.get("t_final")), c.tFinal(), 0.0);
            double cad = Golden.number(u.get("cadence_spm"));
            assertEquals(at + " cadence", cad, c.cadenceSpm(), CADENCE_REL_TOL * Math.max(1, Math.abs(cad)));
        }
        // end of stream: the steps still waiting for their peak join the last window's events
        int last = events.size() - 1;
        events.set(last, concat(events.get(last), c.flush()));
        for (int i = 0; i < events.size(); i++) {
            assertArrayEquals(g + " window " + i + " events", g.events(i), events.get(i), 0.0);
        }
        float[] flat = new float[committed.size()];
        for (int i = 0; i < flat.length; i++) flat[i] = committed.get(i);
        assertArrayEquals("committed density", g.committedDensity, flat, 0f);
        assertEquals(Golden.number(g.index.get("total_steps")), c.steps(), 0.0);
        assertEquals(Golden.number(g.index.get("raw_total_steps")), c.rawSteps(), 0.0);
        assertEquals(Golden.integer(g.index.get("n_events")), c.nEvents());
    }

    static double[] concat(double[] a, double[] b) {
        double[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    // ---- the whole engine: PCM in, counts out ----

    /** Replays the golden densities in window order and checks each model input on the way. */
    private final class ReplayModel implements DensityModel {
        int calls = 0;
        double maxInputDiff = 0;

        @Override
        public float[] run(float[] logMel) {
            int w = g.windowFrames * FrontEnd.N_MELS;
            assertTrue("more windows than the golden run: " + (calls + 1), calls < g.updates.size());
            float[] expected = Arrays.copyOfRange(g.windowInput, calls * w, (calls + 1) * w);
            maxInputDiff = Math.max(maxInputDiff, maxAbsDiff(logMel, expected));
            return g.density(calls++);
        }
    }

    private void checkEngine(int[] blocks, String how) throws Exception {
        ReplayModel model = new ReplayModel();
        StreamCounter sc = new StreamCounter(model, g.filterbank(), g.alignment(), g.calibration);
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
        // A flush-only update (no model run: its steps waited for a peak past the last window)
        // is folded into the last window's events, as the golden index records them.
        while (ups.size() > g.updates.size() && ups.get(ups.size() - 1).lo == ups.get(ups.size() - 1).hi) {
            Update extra = ups.remove(ups.size() - 1);
            Update prev = ups.remove(ups.size() - 1);
            ups.add(new Update(prev.window, prev.startFrame, prev.lo, prev.hi, prev.t, prev.tFinal, prev.steps,
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
            assertArrayEquals(w + " events", g.events(i), u.events, 0.0);
            double cad = Golden.number(e.get("cadence_spm"));
            assertEquals(w + " cadence", cad, u.cadenceSpm, CADENCE_REL_TOL * Math.max(1, Math.abs(cad)));
        }
        assertEquals(at + " total steps", Golden.number(g.index.get("total_steps")), sc.steps(), 0.0);
        assertEquals(at + " events", Golden.integer(g.index.get("n_events")), sc.nEvents());
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

    @Test
    public void engineRefusesPushAfterFinish() throws Exception {
        StreamCounter sc = new StreamCounter(new ReplayModel(), g.filterbank(), g.alignment(), g.calibration);
        sc.finish();
        try {
            sc.push(new float[10]);
            fail("push after finish must throw");
        } catch (IllegalStateException expected) {
            assertFalse(expected.getMessage().isEmpty());
        }
    }
}
