package org.footfall.core;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes a run's raw audio and motion into a recording folder, the layout of {@code
 * edge/recording.py} that {@code footfall data import-imu} reads:
 *
 * <pre>
 *   FOLDER/recording.json   {"format": "footfall-recording", "version": 1, "audio": {...}, "accel": {...}, ...}
 *   FOLDER/audio.wav        mono PCM 16-bit
 *   FOLDER/accel.csv        t_s,x,y,z   (m/s^2 with gravity)
 *   FOLDER/gyro.csv         t_s,x,y,z   (rad/s; only when a gyroscope sample was written)
 * </pre>
 *
 * <p>All times are seconds on one clock (the app passes {@code SystemClock.elapsedRealtimeNanos()
 * / 1e9} for the first audio sample and for every sensor event), so the importer only refines
 * the offset. Streams are written as they come; {@link #close()} patches the WAV header and
 * writes {@code recording.json}, so a recording cut short by an exception is still readable
 * once closed. Plain Java, no Android imports: tested on the JVM.
 */
public final class RecordingWriter implements AutoCloseable {
    public static final String FORMAT = "footfall-recording";
    public static final int VERSION = 1;
    public static final String META = "recording.json";
    public static final String AUDIO = "audio.wav";
    public static final String ACCEL = "accel.csv";
    public static final String GYRO = "gyro.csv";
    private static final String MOTION_HEADER = "t_s,x,y,z";
    private static final int WAV_HEADER_BYTES = 44;

    private final Path folder;
    private final int sampleRate;
    private final double audioStartS;
    private final Map<String, String> extra;
    private final RandomAccessFile wav;
    private final BufferedWriter accel;
    private BufferedWriter gyro;
    private long frames;
    private long accelRows;
    private boolean closed;

    /**
     * @param folder a new folder, or an existing one without a recording in it
     * @param sampleRate the audio's rate (16000 from the app)
     * @param audioStartS the clock time of the first audio sample, seconds
     * @param extra metadata strings: device, arm ("L", "R" or ""), orientation, runner_id
     * @throws IOException when the folder already holds a recording or cannot be written
     */
    public RecordingWriter(Path folder, int sampleRate, double audioStartS, Map<String, String> extra) throws IOException {
        if (sampleRate <= 0) throw new IllegalArgumentException("sample rate must be > 0, got " + sampleRate);
        for (String name : new String[] {META, AUDIO, ACCEL, GYRO}) {
            if (Files.exists(folder.resolve(name)))
                throw new IOException(folder + ": already holds a recording (" + name + "); choose another folder");
        }
        Files.createDirectories(folder);
        this.folder = folder;
        this.sampleRate = sampleRate;
        this.audioStartS = audioStartS;
        this.extra = new TreeMap<>(extra);
        for (String key : new String[] {"format", "version", "audio", "accel", "gyro"}) {
            if (this.extra.containsKey(key)) throw new IllegalArgumentException("metadata key '" + key + "' is reserved");
        }
        wav = new RandomAccessFile(folder.resolve(AUDIO).toFile(), "rw");
        wav.setLength(0);
        wav.write(wavHeader(0));
        accel = Files.newBufferedWriter(folder.resolve(ACCEL), StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW);
        accel.write(MOTION_HEADER);
        accel.write('\n');
    }

    /** Appends audio samples in [-1, 1] (clipped) as 16-bit PCM. */
    public void writeAudio(float[] block, int length) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(2 * length).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < length; i++) {
            float v = Math.max(-1f, Math.min(1f, block[i]));
            bytes.putShort((short) Math.round(v * 32767f));
        }
        wav.write(bytes.array());
        frames += length;
    }

    /** One accelerometer event: clock time (s) and x, y, z in m/s^2 (gravity included). */
    public void writeAccel(double tS, float x, float y, float z) throws IOException {
        accel.write(row(tS, x, y, z));
        accelRows++;
    }

    /** One gyroscope event: clock time (s) and x, y, z in rad/s; the file is created on the first one. */
    public void writeGyro(double tS, float x, float y, float z) throws IOException {
        if (gyro == null) {
            gyro = Files.newBufferedWriter(folder.resolve(GYRO), StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW);
            gyro.write(MOTION_HEADER);
            gyro.write('\n');
        }
        gyro.write(row(tS, x, y, z));
    }

    public long frames() {
        return frames;
    }

    /** Patches the WAV header with the frame count and writes recording.json. */
    @Override
    public void close() throws IOException {
        if (closed) return;
        closed = true;
        try {
            wav.seek(0);
            wav.write(wavHeader(frames));
        } finally {
            wav.close();
            accel.close();
            if (gyro != null) gyro.close();
        }
        Files.write(folder.resolve(META), metaJson().getBytes(StandardCharsets.UTF_8));
    }

    private static String row(double tS, float x, float y, float z) {
        return String.format(Locale.ROOT, "%.6f,%.5f,%.5f,%.5f%n", tS, x, y, z);
    }

    private byte[] wavHeader(long nFrames) {
        long dataBytes = 2 * nFrames;
        ByteBuffer h = ByteBuffer.allocate(WAV_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        h.put("RIFF".getBytes(StandardCharsets.US_ASCII)).putInt((int) (36 + dataBytes));
        h.put("WAVE".getBytes(StandardCharsets.US_ASCII));
        h.put("fmt ".getBytes(StandardCharsets.US_ASCII)).putInt(16).putShort((short) 1).putShort((short) 1);
        h.putInt(sampleRate).putInt(2 * sampleRate).putShort((short) 2).putShort((short) 16);
        h.put("data".getBytes(StandardCharsets.US_ASCII)).putInt((int) dataBytes);
        return h.array();
    }

    private String metaJson() {
        StringBuilder s = new StringBuilder();
        s.append("{\n \"format\": \"").append(FORMAT).append("\",\n \"version\": ").append(VERSION).append(",\n");
        s.append(String.format(Locale.ROOT, " \"audio\": {\"file\": \"%s\", \"sample_rate\": %d, \"frames\": %d, \"start_s\": %.6f},%n",
                AUDIO, sampleRate, frames, audioStartS));
        if (accelRows > 0) s.append(" \"accel\": {\"file\": \"").append(ACCEL).append("\", \"unit\": \"m/s^2\"},\n");
        if (gyro != null) s.append(" \"gyro\": {\"file\": \"").append(GYRO).append("\", \"unit\": \"rad/s\"},\n");
        for (Map.Entry<String, String> e : extra.entrySet())
            s.append(" \"").append(escape(e.getKey())).append("\": \"").append(escape(e.getValue())).append("\",\n");
        s.append(" \"created\": \"").append(Instant.now().truncatedTo(ChronoUnit.SECONDS)).append("\"\n}\n");
        return s.toString();
    }

    private static String escape(String v) {
        StringBuilder out = new StringBuilder();
        for (char c : v.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c < 0x20) out.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
            else out.append(c);
        }
        return out.toString();
    }
}
