package org.footfall.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

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

    @Test(expected = IllegalArgumentException.class)
    public void alignmentRejectsHopsOffTheDensityGrid() {
        new Alignment(200, 50);
    }

    @Test
    public void counterEventsAtHalfSteps() {
        Counter c = new Counter();
        float[] d = new float[25];
        d[3] = 0.3f;
        d[5] = 0.4f; // crosses 0.5 here: one event at the peak frame 5
        d[10] = 1.0f; // 1.7: crosses 1.5, event at frame 10
        double[] ev = c.commit(d);
        assertEquals(2, ev.length);
        assertEquals((5 + 0.5) / 25, ev[0], 0.0);
        assertEquals((10 + 0.5) / 25, ev[1], 0.0);
        assertEquals((double) 0.3f + (double) 0.4f + (double) 1.0f, c.steps(), 0.0);
        assertEquals(1.0, c.tFinal(), 0.0);
        assertEquals(c.steps() * 60, c.cadenceSpm(), 1e-12); // 1 s committed
        assertEquals(0.0, new Counter().cadenceSpm(), 0.0);
    }

    @Test
    public void counterWaitsForThePeakAndFlushes() {
        Counter c = new Counter();
        assertEquals(0, c.commit(new float[] {0f, 0.2f, 0.5f, 0.7f}).length); // crosses 0.5 while rising
        assertEquals(1, c.pending());
        assertEquals(0, c.commit(new float[] {0.9f}).length); // 2.3: a second crossing, still rising
        assertEquals(2, c.pending());
        assertArrayEquals(new double[] {4.5 / 25, 4.5 / 25}, c.flush(), 0.0); // both at the top frame
        assertEquals(2, c.nEvents());
        assertEquals((int) Math.floor(c.steps() + 0.5), c.nEvents());
        assertEquals(0, c.flush().length);

        Counter d = new Counter();
        assertArrayEquals(new double[] {1.5 / 25}, d.commit(new float[] {0f, 0.6f, 0.2f}), 0.0); // peaked at frame 1
        assertEquals(0, d.pending());
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
    }

    @Test
    public void lowLatencyScheduleOfACard() {
        Map<String, Object> fe = ModelSpec.runtimeFrontend();
        ModelSpec none = spec(fe, 240, 200, 25.0);
        assertFalse(none.hasLowLatency());
        assertEquals(200, none.alignment(true).hopFrames); // no low-latency schedule: the file schedule
        ModelSpec ll = new ModelSpec("m.pte", "pte", "int8", "abc", 240, 200, 25.0, new int[] {1, 1, 64, 240}, fe, null, 28, 12);
        assertTrue(ll.problems("m.pte", null).isEmpty());
        Alignment a = ll.alignment(true);
        assertEquals(28, a.hopFrames);
        assertEquals(12, a.latencyFrames());
        assertEquals(Alignment.CENTRE, ll.alignment(false).lookaheadFrames);
        ModelSpec bad = new ModelSpec("m.pte", "pte", "int8", "abc", 240, 200, 25.0, new int[] {1, 1, 64, 240}, fe, null, 28, 220);
        List<String> p = bad.problems("m.pte", null);
        assertEquals(p.toString(), 1, p.size());
        assertTrue(p.get(0), p.get(0).startsWith("bad low_latency: lookahead_frames 220"));
    }
}
