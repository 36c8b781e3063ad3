export function App() {
  return <main><h1>loraedge</h1></main>;
}
