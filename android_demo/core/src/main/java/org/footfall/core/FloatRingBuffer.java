package org.footfall.core;

/**
 * A fixed-capacity ring buffer of float samples between a producer (the AudioRecord thread) and a
 * consumer (the inference thread). Writes never block: when the consumer falls behind by more
 * than the capacity, the oldest unread samples are overwritten and counted in {@link #dropped()}.
 *
 * <p>All methods are synchronized; a block copy under the lock is a few microseconds, far below
 * one 10-ms audio hop.
 */
public final class FloatRingBuffer {
    private final float[] data;
    private long written = 0; // total samples ever written
    private long read = 0; // total samples ever consumed (read <= written)
    private long dropped = 0;

    public FloatRingBuffer(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity must be positive, got " + capacity);
        }
        data = new float[capacity];
    }

    public int capacity() {
        return data.length;
    }

    /** Append {@code len} samples; overwrites the oldest unread ones if full. */
    public synchronized void write(float[] src, int off, int len) {
        if (len > data.length) { // only the newest capacity samples can survive
            int skip = len - data.length;
            off += skip;
            len = data.length;
            written += skip;
        }
        int pos = (int) (written % data.length);
        int first = Math.min(len, data.length - pos);
        System.arraycopy(src, off, data, pos, first);
        System.arraycopy(src, off + first, data, 0, len - first);
        written += len;
        if (written - read > data.length) {
            dropped += written - read - data.length;
            read = written - data.length;
        }
        notifyAll();
    }

    /** Unread samples. */
    public synchronized int available() {
        return (int) (written - read);
    }

    /** Consume up to {@code maxLen} samples into {@code dst[off]}; returns how many were read. */
    public synchronized int read(float[] dst, int off, int maxLen) {
        int n = (int) Math.min(maxLen, written - read);
        int pos = (int) (read % data.length);
        int first = Math.min(n, data.length - pos);
        System.arraycopy(data, pos, dst, off, first);
        System.arraycopy(data, 0, dst, off + first, n - first);
        read += n;
        return n;
    }

    /** Wait until at least {@code minSamples} are unread or the timeout passes; returns available(). */
    public synchronized int await(int minSamples, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (written - read < minSamples) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) break;
            wait(left);
        }
        return (int) (written - read);
    }

    /** Copy the newest {@code n} samples ever written (read or not) into {@code dst[off]}, oldest first. */
    public synchronized void latest(float[] dst, int off, int n) {
        if (n > data.length || n > written) {
            throw new IllegalArgumentException("only " + Math.min(written, data.length) + " samples held, asked " + n);
        }
        long start = written - n;
        int pos = (int) (start % data.length);
        int first = Math.min(n, data.length - pos);
        System.arraycopy(data, pos, dst, off, first);
        System.arraycopy(data, 0, dst, off + first, n - first);
    }

    public synchronized long totalWritten() {
        return written;
    }

    /** Samples overwritten before the consumer read them. */
    public synchronized long dropped() {
        return dropped;
    }

    public synchronized void clear() {
        written = 0;
        read = 0;
        dropped = 0;
    }
}
