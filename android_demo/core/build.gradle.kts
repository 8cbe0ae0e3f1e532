// Plain-Java DSP core: ring buffer, log-mel front end, step-event counter, streaming engine.
// No Android imports, so it builds and tests on any JDK; the repository's `make test` compiles
// and runs the same sources with javac + Debian's junit4 (tests/test_android_core.py).
plugins {
    `java-library`
}

java {
    // Java 11 language level: D8 desugars it for minSdk 26.
    sourceCompatibility = JavaVersion.VERSION_11
    targetCompatibility = JavaVersion.VERSION_11
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // Golden vectors written by the Python runtime (`python -m edge.golden DIR`, from the
    // repository root). Without them the golden tests are skipped; the self-tests still run.
    val golden = (project.findProperty("footfallGolden") as String?)
        ?: rootProject.file("../build/golden").path
    systemProperty("footfall.golden", golden)
    systemProperty("footfall.melFilters", rootProject.file("../edge/assets/mel_filters.npy").path)
    testLogging {
        events("passed", "skipped", "failed")
    }
}
