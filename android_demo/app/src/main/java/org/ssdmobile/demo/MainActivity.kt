package org.ssdmobile.demo

import android.content.Intent
import android.os.Bundle
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.Spinner
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import org.ssdmobile.postprocess.describe

/** Pick one of the bundled models, see what its sidecar says, open a screen with it. */
class MainActivity : AppCompatActivity() {
    private var selected: String? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        val picker = findViewById<Spinner>(R.id.model_picker)
        val info = findViewById<TextView>(R.id.model_info)
        val buttons = listOf<Button>(findViewById(R.id.open_camera), findViewById(R.id.open_still), findViewById(R.id.open_benchmark))
        val models = ModelStore.list(this)
        if (models.isEmpty()) {
            info.setText(R.string.no_models)
            buttons.forEach { it.isEnabled = false }
            return
        }
        picker.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, models)
        picker.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                selected = models[position]
                info.text = try {
                    describeAsset(models[position])
                } catch (e: Exception) {
                    selected = null
                    "cannot use ${models[position]}: ${e.message}"
                }
                buttons.forEach { it.isEnabled = selected != null }
            }

            override fun onNothingSelected(parent: AdapterView<*>?) {}
        }
        buttons[0].setOnClickListener { open(CameraActivity::class.java) }
        buttons[1].setOnClickListener { open(StillImageActivity::class.java) }
        buttons[2].setOnClickListener { open(BenchmarkActivity::class.java) }
    }

    /** The sidecar's facts (Sidecar.describe in postprocess). */
    private fun describeAsset(asset: String): String = ModelStore.sidecar(this, asset).describe()

    private fun open(cls: Class<*>) {
        val asset = selected ?: return
        startActivity(Intent(this, cls).putExtra(EXTRA_MODEL, asset))
    }

    companion object {
        const val EXTRA_MODEL = "model_asset"
    }
}
