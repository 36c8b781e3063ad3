import type { ComponentChildren, GenericEventHandler } from "preact";

/** A labelled form control: the label bound (`for`) to the control's `id`. `grow`: takes the row's spare width. */
export function Field({ id, label, grow = false, children }: { id: string; label: ComponentChildren; grow?: boolean; children: ComponentChildren }) {
  return (
    <div class={grow ? "field grow" : "field"}>
      <label for={id}>{label}</label>
      {children}
    </div>
  );
}

/** One `<option>`: [value, text]. */
export type SelectOption = readonly [value: string, text: ComponentChildren];

/** A labelled `<select>` of `options`. */
export function SelectField(props: {
  id: string;
  label: ComponentChildren;
  value: string;
  options: readonly SelectOption[];
  onChange: GenericEventHandler<HTMLSelectElement>;
  required?: boolean;
}) {
  return (
    <Field id={props.id} label={props.label}>
      <select id={props.id} value={props.value} onChange={props.onChange} required={props.required}>
        {props.options.map(([value, text]) => (
          <option key={value} value={value}>
            {text}
          </option>
        ))}
      </select>
    </Field>
  );
}

/** The options of a base-model `<select>`: each model's id. */
export function modelOptions(models: ReadonlyArray<{ id: string }>): SelectOption[] {
  return models.map((m) => [m.id, m.id]);
}
