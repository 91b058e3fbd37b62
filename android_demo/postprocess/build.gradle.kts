// Plain JVM Kotlin: no Android dependencies, so the same sources are tested here by Gradle
// (`./gradlew :postprocess:test -Dfixtures=OUT`) and in CI by test.sh with kotlinc. OUT is what
// `tests/phone_fixtures.sh OUT` writes (reference data, drift-check fixtures); the test vectors
// are read from tests/vectors.
plugins {
    `java-library`
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // api: the generated formats (generated/, `python -m ssdmobile.schema`) read and write JSON with
    // Gson, and a few of their fields are Gson trees (free-form maps)
    api(libs.gson)
    testImplementation(libs.junit)
}

tasks.test {
    // the fixtures test.sh passes: -Dfixtures=OUT (or FIXTURES=OUT), or each directory on its own
    val fixtures = System.getProperty("fixtures") ?: System.getenv("FIXTURES")
    if (fixtures != null) {
        val out = File(fixtures)
        val references = out.resolve("reference").listFiles()
            ?.filter { it.resolve("reference.json").isFile }?.sortedBy { it.name } ?: emptyList()
        // GoldenTest: OUT/reference/<name>/reference.json (`ssdmobile golden`)
        systemProperty("golden.dirs", references.joinToString(",") { it.path })
        // DriftCheckTest: OUT/drift (tests/drift_fixtures.py)
        systemProperty("drift.dir", out.resolve("drift").path)
    }
    System.getProperty("golden.dirs")?.let { systemProperty("golden.dirs", it) }
    System.getenv("SSDMOBILE_GOLDEN_DIRS")?.let { environment("SSDMOBILE_GOLDEN_DIRS", it) }
    System.getProperty("drift.dir")?.let { systemProperty("drift.dir", it) }
    // VectorsTest: every case of tests/vectors/ (the cross-language test vectors)
    systemProperty("vectors.dir", System.getProperty("vectors.dir") ?: rootDir.resolve("../tests/vectors").canonicalPath)
    // BenchResultTest writes sample device results here for tests/test_android_postprocess.py
    System.getProperty("results.out")?.let { systemProperty("results.out", it) }
}
