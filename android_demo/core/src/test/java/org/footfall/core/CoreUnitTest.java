package org.footfall.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** Ring, alignment, counter and card checks that need no golden vectors. */
public class CoreUnitTest {
    private static float[] frame(float v) {
        float[] f = new float[FrontEnd.N_MELS];
        for (int m = 0; m < f.length; m++) f[m] = v + m * 1000;
        return f;
    }

    @Test
    public void frameRingReadsWindowsAcrossTheWrap() {
        FrameRing r = new FrameRing(FrontEnd.N_MELS, 5);
        for (int t = 0; t < 8; t++) r.write(frame(t));
        assertEquals(8, r.written());
        assertEquals(3, r.oldest());
        float[] out = new float[FrontEnd.N_MELS * 4];
        r.readInto(4, 4, out, 4); // frames 4..7, wrapping inside the buffer
        for (int m = 0; m < FrontEnd.N_MELS; m++)
            for (int t = 0; t < 4; t++) assertEquals(4 + t + m * 1000, out[m * 4 + t], 0f);
        try {
            r.readInto(2, 3, out, 4);
            fail("frame 2 was overwritten");
        } catch (IndexOutOfBoundsException expected) {
        }
        try {
            r.readInto(6, 3, out, 4);
            fail("frame 8 is not written yet");
        } catch (IndexOutOfBoundsException expected) {
        }
    }

    @Test
    public void alignmentOfTheStudentDefaults() {
        Alignment a = new Alignment(200, 48); // 2-s window, 0.48-s hop
        assertEquals(50, a.windowD());
        assertEquals(12, a.hopD());
        assertEquals(19, a.commitOffsetD());
        assertEquals(76, a.latencyFrames());
        assertArrayEquals(new int[] {0, 31}, a.commit(0));
        assertArrayEquals(new int[] {19, 31}, a.commit(1));
        // every density frame of any stream length is committed exactly once, in order
        for (int n = 0; n < 1000; n += 7) {
            int next = 0;
            for (Alignment.Window w : a.plan(n)) {
                int firstD = w.startFrame / 4;
                assertEquals("n=" + n, next, firstD + w.lo);
                next = firstD + w.hi;
            }
            assertEquals("n=" + n, n / 4, next);
        }
        assertNull(a.tail(600, 150));
    }

    @Test
    public void alignmentWithALookahead() {
        Alignment a = new Alignment(240, 28, 4, 12); // the bundled card's low-latency schedule
        assertEquals(50, a.commitOffsetD()); // 60 - 7 - 3
        assertEquals(12, a.latencyFrames());
        assertArrayEquals(new int[] {0, 57}, a.commit(0));
        assertArrayEquals(new int[] {50, 57}, a.commit(1));
        assertEquals(new Alignment(240, 200, 4).commitOffsetD(), new Alignment(240, 200, 4, Alignment.CENTRE).commitOffsetD());
        assertEquals(5, new Alignment(240, 200, 4, 20).commitOffsetD()); // the centre hop of 240/200
        for (int n = 0; n < 2000; n += 13) { // every density frame committed once, in order
            int next = 0;
            for (Alignment.Window w : a.plan(n)) {
                assertEquals("n=" + n, next, w.startFrame / 4 + w.lo);
                next = w.startFrame / 4 + w.hi;
            }
            assertEquals("n=" + n, n / 4, next);
        }
    }

    @Test
    public void alignmentRejectsLookaheadsThatDoNotFit() {
        for (int la : new int[] {-4, 6, 216}) {
            try {
                new Alignment(240, 28, 4, la);
                fail("lookahead " + la + " accepted");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().contains("lookahead_frames " + la));
            }
        }
    }

    @Test
    public void aStatefulScheduleTakesEachPacketOnceAndItsTailNeverReachesBack() {
        Alignment a = new Alignment(8, 8, 4, Alignment.CENTRE, true);
        assertEquals(0, a.latencyFrames());
        assertArrayEquals(new int[] {0, 2}, a.commit(0));
        assertArrayEquals(new int[] {0, 2}, a.commit(5));
        List<Alignment.Window> plan = a.plan(8 * 10 + 5); // 10 packets and one more output frame
        assertEquals(11, plan.size());
        for (int k = 0; k < 10; k++) assertEquals(new Alignment.Window(8 * k, 0, 2), plan.get(k));
        assertEquals(new Alignment.Window(80, 0, 1), plan.get(10));
        assertEquals(new Alignment.Window(76, 1, 2), new Alignment(8, 8).plan(85).get(10)); // a window reaches back
        assertNull(a.tail(83, 20));
        for (int[] bad : new int[][] {{8, 4, Alignment.CENTRE}, {8, 8, 0}}) {
            try {
                new Alignment(bad[0], bad[1], 4, bad[2], true);
                fail(Arrays.toString(bad) + " accepted as stateful");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("a streaming model takes each packet once"));
            }
        }
    }

    @Test(expected = IllegalArgumentException.class)
    public void alignmentRejectsHopsOffTheDensityGrid() {
        new Alignment(200, 50);
    }

    /** One frame per 40 ms: {@code v} at the given frames, {@code background} elsewhere. */
    private static float[] logits(int n, float background, int[] at, float v) {
        float[] x = new float[n];
        Arrays.fill(x, background);
        for (int j : at) x[j] = v;
        return x;
    }

    /** Frames {@code first, first + step, ...} below {@code end}. */
    private static int[] every(int first, int step, int end) {
        int[] at = new int[(end - first + step - 1) / step];
        for (int i = 0; i < at.length; i++) at[i] = first + i * step;
        return at;
    }

    /** Every event of a whole track, committed frame by frame, and the flush. */
    private static double[] countAll(Counter c, float[] x) {
        double[] ev = new double[0];
        for (int i = 0; i < x.length; i++) ev = concat(ev, c.commit(x, i, i + 1));
        return concat(ev, c.flush());
    }

    @Test
    public void counterCountsASteadyRunLateWithTheTimesOfItsSteps() {
        int[] at = every(10, 9, 550); // 166.7 spm for 21.6 s, then 2 s of nothing
        float[] x = logits(600, -6f, at, 3f);
        Counter c = new Counter();
        assertEquals(Counter.CadenceState.WARMING_UP, c.cadenceState());
        assertNull(c.period());
        assertNull(c.meanCadence());
        assertNull(c.peakCadence());
        double[] ev = new double[0];
        int firstAt = -1;
        for (int i = 0; i < x.length; i++) {
            double[] e = c.commit(x, i, i + 1);
            if (e.length > 0 && firstAt < 0) firstAt = i;
            ev = concat(ev, e);
            if (i == 300) { // 12 s in: a runner at 0.36 s a step
                assertEquals(Counter.CadenceState.STEPS, c.cadenceState());
                assertEquals(60 / 0.36, c.cadenceSpm(), 1e-9);
                assertEquals(60 / 0.36, c.shownCadence(), 1e-9);
                assertTrue(c.tDecided() <= c.tFinal() - CounterParams.DEFAULTS.lagS);
            }
        }
        // the first step is decided the lag (3 s) after it, the run confirmed, and counted with its own time
        assertTrue("first step counted at frame " + firstAt, firstAt * 0.04 >= 10 * 0.04 + 3.0);
        assertEquals((2 * 10 + 1) / 50.0, ev[0], 0.0);
        double[] flushed = c.flush();
        assertTrue(flushed.length > 0); // the last 3 s are decided at the end of the stream
        ev = concat(ev, flushed);
        assertEquals(at.length, ev.length);
        assertEquals(at.length, c.nEvents());
        for (int k = 0; k < at.length; k++) {
            assertEquals("step " + k, (2 * at[k] + 1) / 50.0, ev[k], 0.0); // tracker frame 2j: the centre of output frame j
        }
        assertEquals(0.36, c.period(), 1e-12);
        assertEquals(60 / 0.36, c.peakCadence(), 1e-9);
        assertEquals(Counter.CadenceState.NO_STEPS, c.cadenceState()); // the runner stopped
        assertEquals(0.0, c.cadenceSpm(), 0.0);
        assertEquals(c.activeSteps() * 60.0 / c.activeSeconds(), c.meanCadence(), 1e-9);
        assertTrue(c.activeSeconds() >= 20 && c.activeSeconds() <= 24);
        assertEquals(0, c.flush().length); // a second flush counts nothing more
    }

    @Test
    public void counterCountsNothingInSilenceOrForALoneKnock() {
        Counter silence = new Counter();
        assertEquals(0, silence.commit(logits(60, -8f, new int[0], 0f)).length);
        assertEquals(Counter.CadenceState.WARMING_UP, silence.cadenceState()); // 2.4 s
        assertEquals(0, silence.commit(logits(440, -8f, new int[0], 0f)).length);
        assertEquals(Counter.CadenceState.NO_STEPS, silence.cadenceState());
        assertEquals(0, silence.flush().length);
        assertEquals(0.0, silence.activeSeconds(), 0.0);
        assertNull(silence.meanCadence());
        // a lone knock, and a burst of three at a runner's pace: no runner
        assertEquals(0, countAll(new Counter(), logits(500, -6f, new int[] {200}, 5f)).length);
        assertEquals(0, countAll(new Counter(), logits(500, -6f, new int[] {200, 209, 218}, 5f)).length);
    }

    @Test
    public void counterCountsEveryStepOfARunWithAHalfStrengthFarFoot() {
        // 150 spm: the near foot at logit 3, the far foot at half its height over the background's -6
        int[] near = every(10, 20, 590);
        int[] far = every(20, 20, 590);
        float[] x = logits(600, -6f, near, 3f);
        for (int j : far) x[j] = -1.5f;
        double[] ev = countAll(new Counter(), x);
        assertEquals(near.length + far.length, ev.length);
        for (int k = 0; k < ev.length; k++) assertEquals((2 * (10 + 10 * k) + 1) / 50.0, ev[k], 0.0);
        // without the far foot: the near foot's steps alone (a 75-spm runner); at a threshold of
        // p 0.5 the far foot is no step
        assertEquals(near.length, countAll(new Counter(), logits(600, -6f, near, 3f)).length);
        assertEquals(near.length, countAll(new Counter(new CounterParams(0.5, 75, 250, 30, 1e-5, 3.0)), x).length);
    }

    @Test
    public void counterGivesTheSameStepsInAnyChunks() {
        java.util.Random rng = new java.util.Random(3);
        float[] x = new float[900];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextGaussian() * 1.5 - 3.5);
        for (int j = 100; j < 700; j += 8 + rng.nextInt(3)) x[j] = 2f + 2 * rng.nextFloat();
        Counter whole = new Counter();
        double[] expected = concat(whole.commit(x), whole.flush());
        assertTrue(expected.length > 50);
        for (int trial = 0; trial < 5; trial++) {
            Counter c = new Counter();
            double[] ev = new double[0];
            int pos = 0;
            while (pos < x.length) {
                int n = Math.min(x.length - pos, rng.nextInt(40));
                ev = concat(ev, c.commit(x, pos, pos + n));
                pos += n;
            }
            assertArrayEquals(expected, concat(ev, c.flush()), 0.0);
            assertEquals(whole.activeFrames(), c.activeFrames());
            assertEquals(whole.peakCadence(), c.peakCadence());
        }
    }

    @Test
    public void counterParamsAreCheckedAsInPython() {
        assertEquals(CounterParams.DEFAULTS, CounterParams.fromMap(null));
        assertEquals(CounterParams.DEFAULTS, CounterParams.fromMap(new LinkedHashMap<String, Object>()));
        CounterParams d = CounterParams.DEFAULTS;
        assertEquals(new CounterParams(0.05, 75.0, 250.0, 30.0, 1e-5, 3.0), d);
        assertEquals(Math.log(0.05 / 0.95), d.thresholdLogit(), 0.0);
        assertEquals(50, CounterParams.FPS);
        assertEquals(12, d.periodMin()); // 250 spm
        assertEquals(40, d.periodMax()); // 75 spm
        assertEquals(29, d.nTempi());
        assertEquals(150, d.lagFrames());
        assertEquals(Math.rint((Math.log(1e-5) - Math.log(29) - Math.log1p(-1e-5)) * 16777216.0) / 16777216.0, d.startCost(), 0.0);
        assertEquals(Math.rint((Math.log(1e-5) - Math.log1p(-1e-5)) * 16777216.0) / 16777216.0, d.stopCost(), 0.0);
        assertEquals(Math.rint(-Math.log(0.05 / 0.95) * 16777216.0) / 16777216.0, d.bias(), 0.0);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("lag_s", 0.25);
        m.put("min_spm", 100L); // JSON integers read as Long
        CounterParams p = CounterParams.fromMap(m);
        assertEquals(12, p.lagFrames()); // 12.5 frames, half to even as Python rounds
        assertEquals(30, p.periodMax());
        assertEquals(d.threshold, p.threshold, 0.0);
        assertEquals(p, CounterParams.fromMap(p.toMap()));
        assertEquals(p.hashCode(), CounterParams.fromMap(p.toMap()).hashCode());
        assertFalse(p.equals(d));
        assertEquals(CounterParams.NAMES, new ArrayList<>(p.toMap().keySet()));
        Object[][] bad = {
            {"threshold", 1.0, "counter threshold 1.0 must be a probability in (0, 1)"},
            {"threshold", 0L, "counter threshold 0.0 must be a probability"},
            {"threshold", "high", "counter threshold high must be a number"},
            {"threshold", Double.NaN, "counter threshold NaN must be a number"},
            {"lag_s", true, "counter lag_s true must be a number"},
            {"lag_s", Double.POSITIVE_INFINITY, "must be a number"},
            {"min_spm", 250.0, "counter needs 30 <= min_spm < max_spm <= 300 steps a minute, got 250.0, 250.0"},
            {"min_spm", 29.0, "counter needs 30 <= min_spm"},
            {"max_spm", 301L, "counter needs 30 <= min_spm"},
            {"min_spm", 200.0, "max_spm", 210.0, "leave too few step periods (15-15 tracker frames)"},
            {"tempo_lambda", -1.0, "counter tempo_lambda -1.0 must be in [0, 1000]"},
            {"tempo_lambda", 1000.5, "tempo_lambda"},
            {"switch_prob", 0.0, "counter switch_prob 0.0 must be in (0, 0.5)"},
            {"switch_prob", 0.5, "switch_prob"},
            {"lag_s", -0.02, "counter lag_s -0.02 must be in [0, 10] seconds"},
            {"lag_s", 10.5, "lag_s"},
            {"cadence", 1L, "unknown counter parameters ['cadence'] "
                    + "(known: ['lag_s', 'max_spm', 'min_spm', 'switch_prob', 'tempo_lambda', 'threshold'])"},
            // an old card's counter (a peak picker's): one message that says what to do
            {"threshold", 0.2, "train_steps", 4L, "this card's counter is a peak picker's (train_steps); the counter is a "
                    + "cadence tracker now: export the model again, or choose its counter again"},
            {"min_interval_s", 0.25, "keep_first", true, "a peak picker's (keep_first, min_interval_s)"},
        };
        for (Object[] b : bad) {
            Map<String, Object> map = new LinkedHashMap<>();
            for (int i = 0; i + 1 < b.length; i += 2) map.put((String) b[i], b[i + 1]);
            try {
                CounterParams.fromMap(map);
                fail(map + " accepted");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().contains((String) b[b.length - 1]));
            }
        }
    }

    static double[] concat(double[] a, double[] b) {
        double[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static ModelSpec spec(Map<String, Object> fe, int w, int h, double fps) {
        return new ModelSpec("m.pte", "pte", "int8", "abc", w, h, fps, new int[] {1, 1, 64, w}, fe);
    }

    @Test
    public void modelCardChecksAsEdgeRun() {
        Map<String, Object> fe = ModelSpec.runtimeFrontend();
        assertTrue(spec(fe, 200, 48, 25.0).problems("m.pte", "ABC").isEmpty());
        assertEquals(4, spec(fe, 200, 48, 25.0).densityStride());
        List<String> p = spec(fe, 200, 48, 25.0).problems("m.tflite", "abd");
        assertEquals(p.toString(), 3, p.size()); // name, format, sha256
        fe.put("n_mels", 128);
        assertEquals(1, spec(fe, 200, 48, 25.0).problems("m.pte", null).size());
        assertEquals(1, spec(ModelSpec.runtimeFrontend(), 200, 50, 25.0).problems("m.pte", null).size());
        fe = ModelSpec.runtimeFrontend();
        fe.put("sample_rate", 16000.0); // JSON numbers compare by value
        assertTrue(spec(fe, 200, 48, 25.0).problems("m.pte", null).isEmpty());
        fe.put("log_eps", 1e-6); // a front end of schema-1 days
        assertEquals("[front end differs: log_eps card 1.0E-6, runtime 1.0E-12]", spec(fe, 200, 48, 25.0).problems("m.pte", null).toString());
        p = spec(ModelSpec.runtimeFrontend(), 200, 48, 50.0).problems("m.pte", null);
        assertTrue(p.toString(), p.get(0).startsWith("card density_fps 50.0 != this runtime's 25"));
        ModelSpec density = new ModelSpec("m.pte", "pte", "int8", "abc", 200, 48, 25.0, new int[] {1, 1, 64, 200},
                ModelSpec.runtimeFrontend(), 2, "step_density", CounterParams.DEFAULTS, 0, Alignment.CENTRE);
        assertEquals("[card output 'step_density'; this runtime counts 'step_onset_logit']", density.problems("m.pte", null).toString());
    }

    /** A card as org.json (or MiniJson) would hand it over. */
    private static Map<String, Object> card() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("artifact", "m.tflite");
        c.put("format", "tflite");
        c.put("precision", "int8");
        c.put("sha256", "abc");
        c.put("window_frames", 240L);
        c.put("hop_frames", 200L);
        c.put("density_fps", 25.0);
        c.put("input_shape", Arrays.asList(1L, 1L, 64L, 240L));
        c.put("frontend", ModelSpec.runtimeFrontend());
        c.put("output", "step_onset_logit");
        c.put("counter", new LinkedHashMap<String, Object>());
        Map<String, Object> ll = new LinkedHashMap<>();
        ll.put("hop_frames", 28L);
        ll.put("lookahead_frames", 12L);
        c.put("low_latency", ll);
        c.put("schema", 2L);
        return c;
    }

    @Test
    public void aCardIsReadWithItsCounterAndSchedule() {
        ModelSpec s = ModelSpec.fromCard(card());
        assertTrue(s.problems("m.tflite", "ABC").toString(), s.problems("m.tflite", "ABC").isEmpty());
        assertEquals(CounterParams.DEFAULTS, s.counter);
        assertEquals(28, s.alignment(true).hopFrames);
        assertEquals(12, s.alignment(true).latencyFrames());
        Map<String, Object> c = card();
        Map<String, Object> counter = new LinkedHashMap<>();
        counter.put("threshold", 0.7);
        counter.put("lag_s", 1L);
        c.put("counter", counter);
        c.remove("output"); // a schema-2 card without it gives logits (the field's default)
        s = ModelSpec.fromCard(c);
        assertEquals(new CounterParams(0.7, 75.0, 250.0, 30.0, 1e-5, 1.0), s.counter);
        assertEquals(ModelSpec.OUTPUT_KIND, s.output);
        counter.put("gap", 1L);
        try {
            ModelSpec.fromCard(c);
            fail("unknown counter parameter accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().startsWith("bad counter: unknown counter parameters ['gap']"));
        }
        counter.remove("gap");
        counter.put("train_steps", 3L); // a card exported for the peak picker
        try {
            ModelSpec.fromCard(c);
            fail("a peak picker's counter accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().startsWith("bad counter: this card's counter is a peak picker's (train_steps)"));
        }
    }

    @Test
    public void aSchema1CardIsRefusedWithOneMessage() {
        Map<String, Object> c = card();
        c.remove("schema"); // a card before schema 2: a density model with a rate calibration
        c.remove("output");
        c.remove("counter");
        Map<String, Object> cal = new LinkedHashMap<>();
        cal.put("kind", "rate_gain");
        c.put("calibration", cal);
        for (Object schema : new Object[] {null, 1L}) {
            if (schema != null) c.put("schema", schema);
            try {
                ModelSpec.fromCard(c);
                fail("schema " + schema + " accepted");
            } catch (IllegalArgumentException e) {
                assertEquals(ModelSpec.SCHEMA_1, e.getMessage());
                assertTrue(e.getMessage().contains("step density") && e.getMessage().contains("train and export the model again"));
            }
        }
        c.put("schema", 3L);
        try {
            ModelSpec.fromCard(c);
            fail("schema 3 accepted");
        } catch (IllegalArgumentException e) {
            assertEquals("card schema 3; this runtime reads 2", e.getMessage());
        }
        ModelSpec old = new ModelSpec("m.pte", "pte", "int8", "abc", 200, 48, 25.0, new int[] {1, 1, 64, 200},
                ModelSpec.runtimeFrontend(), 1, "step_density", CounterParams.DEFAULTS, 0, Alignment.CENTRE);
        assertEquals(Arrays.asList(ModelSpec.SCHEMA_1), old.problems("other.tflite", "x")); // one message, nothing else
    }

    @Test
    public void lowLatencyScheduleOfACard() {
        Map<String, Object> fe = ModelSpec.runtimeFrontend();
        ModelSpec none = spec(fe, 240, 200, 25.0);
        assertFalse(none.hasLowLatency());
        assertEquals(200, none.alignment(true).hopFrames); // no low-latency schedule: the file schedule
        ModelSpec ll = new ModelSpec("m.pte", "pte", "int8", "abc", 240, 200, 25.0, new int[] {1, 1, 64, 240}, fe,
                ModelSpec.SCHEMA, ModelSpec.OUTPUT_KIND, CounterParams.DEFAULTS, 28, 12);
        assertTrue(ll.problems("m.pte", null).isEmpty());
        Alignment a = ll.alignment(true);
        assertEquals(28, a.hopFrames);
        assertEquals(12, a.latencyFrames());
        assertEquals(Alignment.CENTRE, ll.alignment(false).lookaheadFrames);
        ModelSpec bad = new ModelSpec("m.pte", "pte", "int8", "abc", 240, 200, 25.0, new int[] {1, 1, 64, 240}, fe,
                ModelSpec.SCHEMA, ModelSpec.OUTPUT_KIND, CounterParams.DEFAULTS, 28, 220);
        List<String> p = bad.problems("m.pte", null);
        assertEquals(p.toString(), 1, p.size());
        assertTrue(p.get(0), p.get(0).startsWith("bad low_latency: lookahead_frames 220"));
    }

    /** A streaming model's card ({@code edge.card}: a {@code state}, window == hop == the packet). */
    private static Map<String, Object> streamCard() {
        Map<String, Object> c = card();
        c.remove("low_latency");
        c.put("window_frames", 8L);
        c.put("hop_frames", 8L);
        c.put("input_shape", Arrays.asList(1L, 1L, 64L, 8L));
        List<Object> state = new ArrayList<>();
        for (Object[] s : new Object[][] {{"norm_sum", Arrays.asList(1L, 1L, 64L, 1L)}, {"block0", Arrays.asList(1L, 4L, 64L, 2L)}}) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", s[0]);
            m.put("shape", s[1]);
            state.add(m);
        }
        c.put("state", state);
        return c;
    }

    @Test
    @SuppressWarnings("unchecked")
    public void aStreamingCardIsReadWithItsStateAndOneSchedule() {
        ModelSpec s = ModelSpec.fromCard(streamCard());
        assertTrue(s.problems("m.tflite", null).toString(), s.problems("m.tflite", null).isEmpty());
        assertTrue(s.isStreaming());
        assertEquals("[norm_sum[1, 1, 64, 1], block0[1, 4, 64, 2]]", s.state.toString());
        assertEquals(512, s.state.get(1).size());
        for (boolean lowLatency : new boolean[] {false, true}) {
            Alignment a = s.alignment(lowLatency);
            assertTrue(a.stateful);
            assertEquals(8, a.hopFrames);
        }
        assertFalse(ModelSpec.fromCard(card()).isStreaming());
        assertFalse(ModelSpec.fromCard(card()).alignment(false).stateful);
        // a hop other than the packet, a low-latency schedule, a bad shape: refused as verify_card refuses them
        Map<String, Object> c = streamCard();
        c.put("hop_frames", 4L);
        Map<String, Object> ll = new LinkedHashMap<>();
        ll.put("hop_frames", 4L);
        c.put("low_latency", ll);
        ((Map<String, Object>) ((List<?>) c.get("state")).get(0)).put("shape", Arrays.asList(1L, 0L));
        List<String> p = ModelSpec.fromCard(c).problems("m.tflite", null);
        assertEquals(p.toString(), 3, p.size());
        assertEquals("bad state shapes [[1, 0], [1, 4, 64, 2]]", p.get(0));
        assertTrue(p.get(1), p.get(1).startsWith("a streaming model takes each packet once: hop_frames 4"));
        assertEquals("a streaming model has one schedule (no low_latency)", p.get(2));
        c = streamCard();
        c.put("state", Arrays.asList("norm_sum"));
        try {
            ModelSpec.fromCard(c);
            fail("a state without name and shape accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().startsWith("bad state"));
        }
    }
}
