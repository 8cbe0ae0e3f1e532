package org.footfall.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class FloatRingBufferTest {
    private static float[] ramp(int start, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = start + i;
        return a;
    }

    @Test
    public void fifoAcrossTheWrap() {
        FloatRingBuffer rb = new FloatRingBuffer(10);
        rb.write(ramp(0, 7), 0, 7);
        float[] out = new float[5];
        assertEquals(5, rb.read(out, 0, 5));
        assertArrayEquals(ramp(0, 5), out, 0f);
        rb.write(ramp(7, 6), 0, 6); // wraps
        assertEquals(8, rb.available());
        float[] rest = new float[20];
        assertEquals(8, rb.read(rest, 0, 20));
        for (int i = 0; i < 8; i++) assertEquals(5 + i, rest[i], 0f);
        assertEquals(0, rb.available());
        assertEquals(0, rb.dropped());
    }

    @Test
    public void overflowDropsOldest() {
        FloatRingBuffer rb = new FloatRingBuffer(4);
        rb.write(ramp(0, 3), 0, 3);
        rb.write(ramp(3, 3), 0, 3);
        assertEquals(2, rb.dropped());
        float[] out = new float[4];
        assertEquals(4, rb.read(out, 0, 4));
        assertArrayEquals(ramp(2, 4), out, 0f);
        rb.write(ramp(100, 9), 0, 9); // longer than the capacity
        assertEquals(4, rb.read(out, 0, 4));
        assertArrayEquals(ramp(105, 4), out, 0f);
        assertEquals(2 + 5, rb.dropped());
    }

    @Test
    public void latestPeeksWithoutConsuming() {
        FloatRingBuffer rb = new FloatRingBuffer(6);
        rb.write(ramp(0, 9), 0, 9);
        float[] out = new float[3];
        rb.latest(out, 0, 3);
        assertArrayEquals(ramp(6, 3), out, 0f);
        assertEquals(6, rb.available());
        assertEquals(9, rb.totalWritten());
    }

    @Test
    public void awaitReturnsWhenDataArrives() throws Exception {
        final FloatRingBuffer rb = new FloatRingBuffer(1000);
        Thread producer = new Thread(() -> {
            for (int i = 0; i < 10; i++) {
                rb.write(ramp(i * 50, 50), 0, 50);
                try {
                    Thread.sleep(2);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        producer.start();
        assertEquals(true, rb.await(500, 5000) >= 500);
        producer.join();
    }
}
