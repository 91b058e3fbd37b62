// Plain JVM Kotlin: no Android dependencies, so the same sources are tested here by Gradle
// (`./gradlew :postprocess:test`, golden files need -Dgolden.dirs) and by test.sh with kotlinc.
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
    // api: the sidecar classes the app uses carry Gson annotations and are mapped by Gson
    api(libs.gson)
    testImplementation(libs.junit)
}

tasks.test {
    // GoldenTest reads the golden files `ssdmobile golden` writes; test.sh generates them
    System.getProperty("golden.dirs")?.let { systemProperty("golden.dirs", it) }
    System.getenv("SSDMOBILE_GOLDEN_DIRS")?.let { environment("SSDMOBILE_GOLDEN_DIRS", it) }
    // DriftCheckTest reads what tests/drift_fixtures.py writes (test.sh runs it)
    System.getProperty("drift.dir")?.let { systemProperty("drift.dir", it) }
    System.getProperty("results.out")?.let { systemProperty("results.out", it) }
    // SchemaTest checks the Kotlin reader against the committed sidecar JSON Schema
    systemProperty("sidecar.schema", rootDir.resolve("../ssdmobile/schema/sidecar.schema.json").canonicalPath)
}
