plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.ssdmobile.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.ssdmobile.demo"
        minSdk = 28          // ImageDecoder (EXIF-aware still images); CameraX and ExecuTorch need less
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // the runtime version a device result reports (BenchmarkActivity)
        buildConfigField("String", "EXECUTORCH_VERSION", "\"${libs.versions.executorch.get()}\"")
        ndk {
            // the ExecuTorch AAR ships arm64-v8a (phones) and x86_64 (emulators)
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    buildTypes {
        release {
            // the formats are read by generated code (no reflection): minify needs no keep rules for them
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    buildFeatures {
        viewBinding = false
        buildConfig = true
    }
    androidResources {
        // models are copied out of the APK once; storing them uncompressed makes that a plain copy
        noCompress += listOf("pte")
    }
}

dependencies {
    implementation(project(":postprocess"))  // brings Gson (api): the generated formats read and write with it
    implementation(libs.executorch.android)
    implementation(libs.camera.core)
    implementation(libs.camera.camera2)
    implementation(libs.camera.lifecycle)
    implementation(libs.camera.view)
    implementation(libs.appcompat)
    implementation(libs.activity.ktx)
    implementation(libs.lifecycle.runtime.ktx)
    implementation(libs.material)
    implementation(libs.constraintlayout)
}
