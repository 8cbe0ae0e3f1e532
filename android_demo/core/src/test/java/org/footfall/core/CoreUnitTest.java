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

    /** One frame per 40 ms; {@code v} at the given frames, {@code -6} elsewhere. */
    private static float[] logits(int n, int[] at, float[] v) {
        float[] x = new float[n];
        Arrays.fill(x, -6f);
        for (int i = 0; i < at.length; i++) x[at[i]] = v[i];
        return x;
    }

    private static final CounterParams ONE_STEP_TRAINS = new CounterParams(0.5, 0.25, 1, 1.25, true, 0.2);

    @Test
    public void counterPlacesAPeakByItsParabola() {
        Counter c = new Counter(ONE_STEP_TRAINS);
        // frames 9, 10, 11 = 1, 3, 2: vertex at 10 + 0.5 * (1 - 2) / (1 - 6 + 2) = 10 + 1/6
        double[] ev = c.commit(logits(30, new int[] {9, 10, 11}, new float[] {1f, 3f, 2f}));
        assertArrayEquals(new double[] {(10 - 1 + 1 + 0.5 + 0.5 * (1.0 - 2.0) / (1.0 - 6.0 + 2.0)) / 25}, ev, 0.0);
        assertEquals(30, c.frames());
        assertEquals(1.2, c.tFinal(), 0.0);
        // a plateau: the first of two equal frames is the peak ("not lower than the next")
        Counter d = new Counter(ONE_STEP_TRAINS);
        assertArrayEquals(new double[] {(5 + 0.5 + 0.5) / 25}, d.commit(logits(30, new int[] {5, 6}, new float[] {2f, 2f})), 0.0);
        // a logit exactly at the threshold's (0 for p 0.5) is a peak; just under it is not
        assertEquals(1, new Counter(ONE_STEP_TRAINS).commit(logits(30, new int[] {5}, new float[] {0f})).length);
        assertEquals(0, new Counter(ONE_STEP_TRAINS).commit(logits(30, new int[] {5}, new float[] {-1e-6f})).length);
    }

    @Test
    public void counterKeepsTheHigherOfTwoClosePeaksAndWaitsForIt() {
        Counter c = new Counter(ONE_STEP_TRAINS);
        // peaks 0.2 s apart (< 0.25 s): the higher, the second, stays; final 0.25 s after it
        float[] x = logits(40, new int[] {10, 15}, new float[] {2f, 3f});
        assertEquals(0, c.commit(x, 0, 21).length); // frame 20 committed: 0.2 s after the peak at 15.5
        assertArrayEquals(new double[] {15.5 / 25}, c.commit(x, 21, 23), 0.0); // frame 22: 0.26 s after it
        assertEquals(0, c.flush().length);
        assertEquals(1, c.nEvents());
    }

    @Test
    public void counterWithKeepFirstKeepsTheFirstOfTwoClosePeaksAtOnce() {
        CounterParams p = new CounterParams(0.5, 0.25, 1, 1.25, true, 0.2, true);
        Counter c = new Counter(p);
        // peaks 0.12 and 0.2 s after a first one: the first stays, counted as soon as it is a peak
        // (frame 11 committed), though the second is higher
        float[] x = logits(40, new int[] {10, 13, 15}, new float[] {2f, 3f, 1f});
        assertEquals(0, c.commit(x, 0, 11).length);
        assertArrayEquals(new double[] {10.5 / 25}, c.commit(x, 11, 12), 0.0);
        assertEquals(0, c.commit(x, 12, 40).length); // 13 and 15: within 0.25 s of the kept one
        assertEquals(0, c.flush().length);
        assertEquals(1, c.nEvents());
        // a lower peak 0.28 s after the kept one is kept too
        Counter d = new Counter(p);
        assertArrayEquals(new double[] {10.5 / 25, 17.5 / 25},
                concat(d.commit(logits(40, new int[] {10, 17}, new float[] {3f, 1f})), d.flush()), 0.0);
    }

    @Test
    public void counterCountsTrainsOnlyAndFillsMissedSteps() {
        // default parameters: 4 steps at most 1.25 s apart make a train; a lone knock counts nothing
        int[] at = {10, 50, 59, 68, 77, 86, 95, /* 104 missing */ 113, 122, 131, /* 140, 149 missing */ 158, 167};
        float[] v = new float[at.length];
        Arrays.fill(v, 3f);
        Counter c = new Counter();
        double[] ev = concat(c.commit(logits(200, at, v)), c.flush());
        assertEquals(at.length - 1 + 3, ev.length); // the knock at frame 10 out, three missed steps in
        assertEquals(c.nEvents(), ev.length);
        assertEquals(50.5 / 25, ev[0], 0.0);
        assertEquals(95.5 / 25 + (113.5 / 25 - 95.5 / 25) * 1 / 2, ev[6], 0.0); // evenly between its neighbours
        assertEquals(9 * 0.04, c.period(), 1e-12);
        assertEquals(60 / 0.36, c.cadenceSpm(), 1e-9);
        assertEquals(Counter.CadenceState.STEPS, c.cadenceState());
        // without the cadence prior the gaps stay gaps; 2-step trains count the knock's neighbours
        Counter noFill = new Counter(new CounterParams(0.5, 0.25, 4, 1.25, false, 0.2));
        assertEquals(at.length - 1, concat(noFill.commit(logits(200, at, v)), noFill.flush()).length);
        // three steps are not a train of four
        Counter three = new Counter();
        assertEquals(0, concat(three.commit(logits(100, new int[] {10, 19, 28}, new float[] {3f, 3f, 3f})), three.flush()).length);
    }

    @Test
    public void counterFiguresOfARun() {
        int[] at = new int[60];
        float[] v = new float[at.length];
        for (int i = 0; i < at.length; i++) {
            at[i] = 10 + 9 * i; // 166.7 spm for 21.6 s
            v[i] = 3f;
        }
        Counter c = new Counter();
        assertEquals(Counter.CadenceState.WARMING_UP, c.cadenceState());
        assertNull(c.meanCadence());
        assertNull(c.peakCadence());
        c.commit(logits(800, at, v));
        c.flush();
        assertEquals(60, c.nEvents());
        assertEquals(Counter.CadenceState.NO_STEPS, c.cadenceState()); // 10 s after the last step
        assertEquals(0.0, c.cadenceSpm(), 0.0);
        assertEquals(60 / 0.36, c.peakCadence(), 1e-9);
        assertEquals(c.activeSteps() * 60.0 / c.activeSeconds(), c.meanCadence(), 1e-9);
        assertTrue(c.activeSeconds() >= 20 && c.activeSeconds() <= 24);
    }

    @Test
    public void counterParamsAreCheckedAsInPython() {
        assertEquals(CounterParams.DEFAULTS, CounterParams.fromMap(null));
        assertEquals(CounterParams.DEFAULTS, CounterParams.fromMap(new LinkedHashMap<String, Object>()));
        assertEquals(Math.log(0.2 / 0.8), CounterParams.DEFAULTS.thresholdLogit(), 0.0);
        assertEquals(4 * 1.25 + 0.25, CounterParams.DEFAULTS.lagS(), 0.0);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("train_steps", 2L);
        m.put("fill_gaps", false);
        CounterParams p = CounterParams.fromMap(m);
        assertEquals(2, p.trainSteps);
        assertFalse(p.fillGaps);
        assertFalse(p.keepFirst);
        m.put("keep_first", true);
        assertTrue(CounterParams.fromMap(m).keepFirst);
        assertFalse(CounterParams.fromMap(m).equals(p));
        assertTrue(Double.isNaN(p.weakThreshold)); // no weak peaks by default: a peak reaches the threshold
        assertEquals(p.thresholdLogit(), p.peakLogit(), 0.0);
        m.put("weak_threshold", 0.05);
        m.put("min_phase", 0.6);
        CounterParams gate = CounterParams.fromMap(m);
        assertEquals(Math.log(0.05 / 0.95), gate.peakLogit(), 0.0);
        assertEquals(0.6, gate.minPhase, 0.0);
        assertEquals(gate, CounterParams.fromMap(gate.toMap())); // a card's null and numbers go round
        m.put("weak_threshold", null);
        assertTrue(Double.isNaN(CounterParams.fromMap(m).weakThreshold));
        assertEquals(CounterParams.DEFAULTS.threshold, p.threshold, 0.0);
        assertEquals(CounterParams.NAMES, new ArrayList<>(p.toMap().keySet()));
        Object[][] bad = {
            {"threshold", 1.0, "threshold"}, {"min_interval_s", 2.0, "min_interval_s < max_gap_s"},
            {"train_steps", 4.0, "whole number"}, {"train_steps", 0L, "whole number"},
            {"gap_tolerance", 0.5, "gap_tolerance"}, {"fill_gaps", 1L, "true or false"}, {"cadence", 1L, "unknown counter parameter"},
            {"keep_first", "yes", "true or false"}, {"weak_threshold", 0.3, "weak_threshold"},
            {"weak_threshold", 0.0, "weak_threshold"}, {"weak_threshold", "low", "must be a number"},
            {"min_phase", 1.0, "min_phase"}, {"min_phase", -0.1, "min_phase"},
        };
        for (Object[] b : bad) {
            Map<String, Object> d = new LinkedHashMap<>();
            d.put((String) b[0], b[1]);
            try {
                CounterParams.fromMap(d);
                fail(d + " accepted");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().contains((String) b[2]));
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
        counter.put("train_steps", 3L);
        c.put("counter", counter);
        c.remove("output"); // a schema-2 card without it gives logits (the field's default)
        s = ModelSpec.fromCard(c);
        assertEquals(new CounterParams(0.7, 0.25, 3, 1.25, true, 0.2), s.counter);
        assertEquals(ModelSpec.OUTPUT_KIND, s.output);
        counter.put("gap", 1L);
        try {
            ModelSpec.fromCard(c);
            fail("unknown counter parameter accepted");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().startsWith("bad counter: unknown counter parameter 'gap'"));
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
