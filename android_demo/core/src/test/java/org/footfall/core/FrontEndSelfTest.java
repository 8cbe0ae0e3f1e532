package org.footfall.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.FileInputStream;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.Assume;
import org.junit.Test;

/** Front-end properties that need no golden vectors. */
public class FrontEndSelfTest {
    static float[] noise(long seed, int n, double amp) {
        Random rng = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (amp * rng.nextGaussian());
        return a;
    }

    @Test
    public void framingIsCausal() {
        LogMel lm = new LogMel(MelFilterbank.compute());
        assertEquals(500, lm.compute(new float[80_000]).length);
        assertEquals(3, lm.compute(new float[3 * 160 + 159]).length);
        assertEquals(0, lm.compute(new float[159]).length);
    }

    @Test
    public void silenceIsTheLogFloor() {
        float[][] f = new LogMel(MelFilterbank.compute()).compute(new float[1600]);
        for (float[] frame : f) for (float v : frame) assertEquals(Counter.PAD_LOG_MEL, v, 0f); // float32(log(LOG_EPS))
    }

    @Test
    public void streamingEqualsOfflineBitForBit() {
        MelFilterbank fb = MelFilterbank.compute();
        float[] audio = noise(3, 16_000 * 2 + 77, 0.1);
        float[][] offline = new LogMel(fb).compute(audio);
        StreamingLogMel s = new StreamingLogMel(fb);
        List<float[]> got = new ArrayList<>();
        Random rng = new Random(4);
        int pos = 0;
        while (pos < audio.length) {
            int len = Math.min(audio.length - pos, rng.nextInt(700));
            float[] block = new float[len];
            System.arraycopy(audio, pos, block, 0, len);
            for (float[] fr : s.push(block)) got.add(fr);
            pos += len;
        }
        assertEquals(offline.length, got.size());
        assertEquals(offline.length, s.framesEmitted());
        for (int i = 0; i < offline.length; i++) assertArrayEquals("frame " + i, offline[i], got.get(i), 0f);
    }

    @Test
    public void historyReproducesTheWholeRecording() {
        MelFilterbank fb = MelFilterbank.compute();
        LogMel lm = new LogMel(fb);
        float[] audio = noise(5, 8000, 0.2);
        float[][] whole = lm.compute(audio);
        int cut = 3200; // 20 frames
        float[] history = new float[FrontEnd.HISTORY];
        System.arraycopy(audio, cut - FrontEnd.HISTORY, history, 0, FrontEnd.HISTORY);
        float[] tail = new float[audio.length - cut];
        System.arraycopy(audio, cut, tail, 0, tail.length);
        float[][] part = lm.compute(tail, history);
        for (int i = 0; i < part.length; i++) assertArrayEquals(whole[20 + i], part[i], 0f);
    }

    @Test
    public void bandMajorLayout() {
        float[][] frames = {{1, 2}, {3, 4}, {5, 6}};
        float[][] full = new float[3][FrontEnd.N_MELS];
        for (int t = 0; t < 3; t++) System.arraycopy(frames[t], 0, full[t], 0, 2);
        float[] flat = LogMel.toBandMajor(full);
        assertEquals(3 * FrontEnd.N_MELS, flat.length);
        assertArrayEquals(new float[] {1, 3, 5, 2, 4, 6}, new float[] {flat[0], flat[1], flat[2], flat[3], flat[4], flat[5]}, 0f);
    }

    /** The shipped asset, when the test is told where it is (-Dfootfall.melFilters=PATH). */
    @Test
    public void computedFilterbankMatchesTheShippedOne() throws Exception {
        String path = System.getProperty("footfall.melFilters");
        Assume.assumeTrue("set -Dfootfall.melFilters=edge/assets/mel_filters.npy", path != null && !path.isEmpty());
        MelFilterbank shipped;
        try (InputStream in = new FileInputStream(path)) {
            shipped = MelFilterbank.fromNpy(in);
        }
        MelFilterbank computed = MelFilterbank.compute();
        double maxDiff = 0;
        for (int m = 0; m < FrontEnd.N_MELS; m++)
            for (int k = 0; k < FrontEnd.N_FREQS; k++)
                maxDiff = Math.max(maxDiff, Math.abs(shipped.weight(m, k) - computed.weight(m, k)));
        assertTrue("max |shipped - computed| = " + maxDiff, maxDiff <= 1e-8);
    }
}
